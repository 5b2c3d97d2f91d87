// trainer.cpp - implementation of the training loop (see trainer.h for the contract).
#include "nfscale/train/trainer.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nfscale/data/dataset.h"
#include "nfscale/data/loader.h"
#include "nfscale/dist/communicator.h"
#include "nfscale/dist/local_communicator.h"
#include "nfscale/models/classifier.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/ema.h"
#include "nfscale/optim/sam.h"
#include "nfscale/optim/schedule.h"
#include "nfscale/optim/optimizer_factory.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/data_setup.h"
#include "nfscale/train/eval_schedule.h"
#include "nfscale/train/recipe.h"
#include "nfscale/train/run_dir.h"
#include "nfscale/train/step.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"
#include "nfscale/util/progress.h"
#include "nfscale/util/rng.h"

namespace nfscale::train {
namespace fs = std::filesystem;

namespace {

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) { g_signal.store(sig); }

// Installs SIGINT/SIGTERM handlers for the lifetime of the object; restores the previous ones.
class SignalScope {
 public:
  SignalScope() {
    g_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// Fault injection for the crash-recovery tests (docs/development.md): NFSCALE_TEST_HANG_AFTER_STEP=N makes every run in
// this process stop making progress once step N is done (after its log line and any checkpoint due), as a hung
// worker would, so a test can kill it at a known point instead of racing a fast run. A SIGINT/SIGTERM ends the hang
// and the run stops as interrupted; SIGKILL is what the tests send. Unset, empty or 0: off.
int64_t hang_after_step_from_env() {
  const char* env = std::getenv("NFSCALE_TEST_HANG_AFTER_STEP");
  if (!env || !*env) return 0;
  char* end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  require(*end == '\0' && n >= 0, std::string("NFSCALE_TEST_HANG_AFTER_STEP='") + env +
                                      "' is not a step number; unset it (it is a test-only fault injection)");
  return n;
}

void hang_for_tests(int64_t step) {
  std::fprintf(stderr, "\n[train] NFSCALE_TEST_HANG_AFTER_STEP: hanging after step %lld until killed\n",
               (long long)step);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// Everything a run trains with, built from the resolved config: the model (through its family), the optimiser the
// family chose, the schedule, EMA and SAM.
struct Session {
  models::Classifier model;
  models::ModelCost cost;
  std::vector<optim::ParamSpec> specs;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::Ema> ema;
  std::unique_ptr<optim::Sam> sam;
  double peak_lr = 0.0;
  int64_t total_steps = 0;
  std::unique_ptr<optim::WarmupCosine> schedule;
};

Session set_up(const TrainConfig& cfg, const RunData& data, bool resuming) {
  const int64_t n_train = static_cast<int64_t>(data.train_indices.size());
  Session s;
  const models::ModelConfig mc = model_config(cfg, data.num_classes, data.channels);
  models::check_resolution(cfg.model, cfg.resolution);
  // The initial weights (and a fine-tuning head) are a function of the seed, not of the process's RNG history.
  torch::manual_seed(derive_seed(cfg.seed, {0x494eull}));
  s.model = models::build_model(mc);
  const torch::Device device = parse_device(cfg.device, "training setting 'device'");
  s.cost = models::count_cost(*s.model, cfg.resolution, data.channels);
  if (!cfg.init_from.empty() && !resuming) {
    load_weights(cfg.init_from, *s.model, models::family_of(cfg.model).head_prefix());
    s.model->reset_classifier(data.num_classes);
  }
  s.model->to(device);  // before the optimiser and EMA create their state (on the same device)
  // channels_last: inputs are converted per batch; convolution outputs follow the input layout.
  s.specs = s.model->param_info();
  s.total_steps = optim::steps_for_budget(cfg.epochs, n_train, cfg.batch);
  s.peak_lr = cfg.absolute_lr ? cfg.lr : optim::scaled_lr(cfg.lr, cfg.batch);
  s.schedule = std::make_unique<optim::WarmupCosine>(
      s.peak_lr, s.total_steps, optim::warmup_steps_for_epochs(cfg.warmup_epochs, n_train, cfg.batch));
  optim::OptimizerConfig oc = optimizer_config(cfg, s.peak_lr);
  oc.sgd.fused = device.is_cpu() && models::fused_ops_enabled();  // the one-pass update is a CPU kernel
  s.optimizer = optim::make_optimizer(oc, s.specs);
  if (cfg.ema_decay > 0) {
    optim::EmaOptions eo;
    eo.decay = cfg.ema_decay;
    s.ema = std::make_unique<optim::Ema>(s.specs, eo);
  }
  if (cfg.sam_rho > 0) {
    optim::SamOptions so;
    so.rho = cfg.sam_rho;
    so.adaptive = cfg.sam_adaptive;
    s.sam = std::make_unique<optim::Sam>(s.specs, so);
  }
  return s;
}

// metrics.jsonl line of a training step.
nlohmann::json train_line(int64_t step, double epoch, double loss, double lr, const optim::StepStats& stats,
                          double images_per_s, double seconds) {
  return {{"type", "train"},          {"step", step},
          {"epoch", epoch},           {"loss", loss},
          {"lr", lr},                 {"grad_norm", stats.grad_norm},
          {"clip_fraction", stats.clip_fraction()}, {"images_per_s", images_per_s},
          {"seconds", seconds}};
}

}  // namespace

nlohmann::json to_json(const EvalPoint& p) {
  nlohmann::json j{{"step", p.step}, {"epoch", p.epoch}, {"examples_seen", p.examples_seen}, {"flops", p.flops}};
  if (p.has_holdout) j["holdout"] = to_json(p.holdout);
  if (p.has_test) j["test"] = to_json(p.test);
  return j;
}

nlohmann::json to_json(const TrainResult& r) {
  return {{"completed", r.completed},         {"interrupted", r.interrupted},   {"steps", r.steps},
          {"total_steps", r.total_steps},     {"examples_seen", r.examples_seen},
          {"train_examples", r.train_examples}, {"params", r.params},         {"macs_per_image", r.macs_per_image},
          {"train_flops", r.train_flops},     {"seconds", r.seconds},         {"final_eval", to_json(r.final_eval)},
          {"checkpoint", r.checkpoint_path},  {"weights", r.weights_path}};
}

TrainResult run_training(const TrainConfig& cfg_in, bool resume, const TrainHooks& hooks) {
  TrainConfig cfg = cfg_in;
  cfg.validate();
  dist::LocalCommunicator local_comm;
  dist::Communicator& comm = hooks.comm ? *hooks.comm : local_comm;
  const int64_t world = comm.world_size(), rank = comm.rank();
  const bool primary = rank == 0;  // rank 0 alone writes the run directory
  if (!primary) cfg.quiet = true;
  // Rank 0 opens (and on a fresh start writes) the run dir first; the others then read its resolved config.
  const RunDir rd = [&] {
    if (primary) {
      RunDir r = open_run_dir(cfg, resume);  // cfg is now the resolved (or stored) configuration
      comm.barrier();
      return r;
    }
    comm.barrier();
    return open_run_dir(cfg, resume, /*primary=*/false);
  }();
  // CPU ranks reduce through Gloo, CUDA ranks through NCCL (one GPU per rank: the communicator's device).
  if (world > 1) {
    const bool cpu = parse_device(cfg.device, "--device").is_cpu();
    require(cpu == comm.device().is_cpu(),
            "--device " + cfg.device + " with " + std::to_string(world) + " data-parallel ranks over " +
                comm.backend() + ": CPU ranks need Gloo and CUDA ranks NCCL (docs/distributed.md)");
    if (!cpu) cfg.device = comm.device().str();  // cuda:<LOCAL_RANK> (untested: no GPU here)
  }
  // Global batch = per-rank micro-batch x ranks x accumulation steps; --micro-batch is per rank.
  const int64_t micro = cfg.micro_batch > 0 ? cfg.micro_batch : cfg.batch / world;
  require(cfg.batch % world == 0 && micro > 0 && cfg.batch % (world * micro) == 0,
          "--batch " + std::to_string(cfg.batch) + " must be a multiple of ranks (" + std::to_string(world) +
              ") x --micro-batch (" + std::to_string(cfg.micro_batch) +
              " per rank); choose a --batch divisible by both, or change --nproc / --micro-batch");
  const bool bf16 = cfg.precision == "bf16";

  // Near-duplicate removal is recorded when a run starts and read back on resume, so a resumed run trains on the
  // very indices it started with (the sampler's exactly-once-per-epoch order is a function of them).
  const std::string& dedup_path = rd.dedup;
  RunData data = setup_data(cfg, rd.resuming ? dedup_path : "");
  if (data.dedup.applied) {
    if (!data.dedup.from_record && primary) write_file_atomic(dedup_path, data.dedup.record.dump(2) + "\n");
    if (!cfg.quiet) std::fprintf(stderr, "%s -> %s\n", describe_dedup(data.dedup).c_str(), dedup_path.c_str());
  } else if (!rd.resuming && primary) {
    std::error_code ec;
    fs::remove(dedup_path, ec);  // a record of an earlier run in this directory would describe other indices
  }
  const int64_t n_train = static_cast<int64_t>(data.train_indices.size());
  require(n_train > 0, "training set '" + cfg.data + "' has no examples left after the hold-out split (holdout=" +
                           std::to_string(cfg.holdout) + "); lower --holdout");

  Session s = set_up(cfg, data, rd.resuming);
  models::ClassifierImpl& model = *s.model;
  optim::Optimizer& optimizer = *s.optimizer;
  const int64_t total_steps = s.total_steps;
  const int64_t hang_after_step = hang_after_step_from_env();
  LoopState st;
  if (rd.resuming) {
    st = load_checkpoint(rd.checkpoint, model, optimizer, s.ema.get());
    require(st.total_steps == total_steps,
            rd.checkpoint + ": checkpoint was written for " + std::to_string(st.total_steps) +
                " steps but the configuration gives " + std::to_string(total_steps) +
                "; use a new --run-dir or the original settings");
  } else if (primary) {
    std::error_code ec;
    fs::remove(rd.metrics, ec);
  }
  st.total_steps = total_steps;
  broadcast_model(comm, model);  // every rank starts from rank 0's weights (no-op for one process)

  TrainResult result;
  result.total_steps = total_steps;
  result.train_examples = n_train;
  result.params = s.cost.params;
  result.macs_per_image = s.cost.macs_per_image;
  result.checkpoint_path = rd.checkpoint;
  // 3 (forward + backward) x 2 FLOPs per MAC; SAM runs two forward-backward passes per step.
  const double flops_per_example = 6.0 * static_cast<double>(s.cost.macs_per_image) * (s.sam ? 2.0 : 1.0);

  const EvalSchedule eval_schedule(total_steps, cfg.eval_every, cfg.eval_points);
  EvalOptions eo = make_eval_options(cfg, data, bf16);
  eo.shard_count = world;
  eo.shard_index = rank;
  // Each rank evaluates its share of the batches; the sums are combined (one process: the result as it is).
  auto eval_on = [&](const std::shared_ptr<data::Dataset>& set, const std::vector<int64_t>& indices) {
    EvalResult r = evaluate(model, set, indices, eo);
    return world == 1 ? r : eval_from_sums(dist::all_reduce_sum(comm, eval_sums(r)));
  };
  auto run_eval = [&](int64_t step) {
    EvalPoint p;
    p.step = step;
    p.epoch = double(st.position) / double(n_train);
    p.examples_seen = st.examples_seen;
    p.flops = flops_per_example * double(st.examples_seen);
    if (!data.holdout_indices.empty()) {
      p.holdout = eval_on(data.train_set, data.holdout_indices);
      p.has_holdout = true;
    }
    if (data.test_set) {
      p.test = eval_on(data.test_set, data.test_indices);
      p.has_test = true;
    }
    nlohmann::json line = to_json(p);
    line["type"] = "eval";
    if (s.ema && cfg.eval_ema) {  // the EMA weights too, logged beside the raw ones
      s.ema->swap_in(s.specs);
      if (!data.holdout_indices.empty())
        line["ema_holdout"] = to_json(eval_on(data.train_set, data.holdout_indices));
      if (data.test_set) line["ema_test"] = to_json(eval_on(data.test_set, data.test_indices));
      s.ema->restore(s.specs);
    }
    if (primary) append_line_durable(rd.metrics, line.dump());
    if (hooks.on_eval) hooks.on_eval(p);
    return p;
  };

  data::LoaderOptions lo = make_train_loader_options(cfg, data);
  lo.batch_size = micro;  // this rank's micro-batches; positions stay global (every rank's share of each step)
  lo.shard_count = world;
  lo.shard_index = rank;
  data::Loader loader(data.train_set, data.train_indices, lo, st.position);
  auto save = [&] {
    st.position = loader.position();
    if (primary) save_checkpoint(rd.checkpoint, model, optimizer, s.ema.get(), st);
  };

  SignalScope signals;
  Progress progress(total_steps, st.step);
  auto t_start = std::chrono::steady_clock::now();
  const double seconds_before = st.seconds;
  auto elapsed = [&] {
    return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  auto last_ckpt = std::chrono::steady_clock::now();
  auto last_print = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  const int64_t n_micro = cfg.batch / (world * micro);  // this rank's micro-batches per step
  model.train();

  if (!cfg.quiet)
    std::fprintf(stderr,
                 "[train] %s: %lld params, %.3f GMACs/img at %lld px, %lld steps of %lld (%s), %lld train examples, "
                 "%s, peak LR %.4g, precision %s%s%s\n",
                 cfg.model.c_str(), (long long)s.cost.params, s.cost.macs_per_image / 1e9, (long long)cfg.resolution,
                 (long long)total_steps, (long long)cfg.batch, n_micro > 1 ? "accumulated" : "single", (long long)n_train,
                 optimizer.kind().c_str(), s.peak_lr, cfg.precision.c_str(),
                 rd.resuming ? (", resumed at step " + std::to_string(st.step)).c_str() : "",
                 world > 1 ? (", " + std::to_string(world) + " ranks").c_str() : "");

  std::vector<data::Batch> micro_batches(n_micro);
  while (st.step < total_steps) {
    bool stop = g_signal.load() != 0 || (hooks.should_stop && hooks.should_stop());
    if (world > 1) stop = comm.any(stop);  // all ranks stop at the same step boundary
    if (stop) {
      st.seconds = elapsed();
      save();
      result.interrupted = true;
      result.steps = st.step;
      result.examples_seen = st.examples_seen;
      result.seconds = st.seconds;
      result.train_flops = flops_per_example * double(st.examples_seen);
      if (!cfg.quiet)
        std::fprintf(stderr, "\n[train] interrupted at step %lld; checkpoint %s (continue with --resume)\n",
                     (long long)st.step, rd.checkpoint.c_str());
      return result;
    }
    // Every random stream of this step (dropout, stochastic depth) is a function of (seed, step, global micro-batch
    // index j): micro-batch i of rank r is global micro-batch j = i x ranks + r (the loader deals them round-robin),
    // so any number of ranks draws the same masks. j = 0 keeps the step's seed (one-micro-batch runs as before).
    const uint64_t step_seed = derive_seed(cfg.seed, {0x5745ull, uint64_t(st.step)});
    std::vector<uint64_t> seeds(static_cast<size_t>(n_micro));
    for (int64_t i = 0; i < n_micro; ++i) {
      const uint64_t j = uint64_t(i * world + rank);
      seeds[size_t(i)] = j == 0 ? step_seed : derive_seed(cfg.seed, {0x5745ull, uint64_t(st.step), j});
    }
    for (auto& mb : micro_batches) mb = loader.next();
    const double lr = (*s.schedule)(st.step);

    // Gradient of the mean loss over the whole effective batch: each micro-batch contributes loss * (micro/batch)
    // (step.h). micro_batches: n_micro x {images [micro, C, R, R], targets [micro, K]}.
    // Each rank's gradient is the mean over its share (batch / ranks); all_reduce_gradients averages the ranks'.
    const int64_t rank_batch = cfg.batch / world;
    double loss_value =
        accumulate_gradients(model, micro_batches, rank_batch, bf16, cfg.channels_last, optimizer, &seeds);
    // Wall time in the gradient all-reduce (logged for ranks: it includes waiting for the slowest rank).
    double allreduce_seconds = 0.0;
    auto timed_all_reduce = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      all_reduce_gradients(comm, optimizer);
      allreduce_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    timed_all_reduce();
    if (s.sam) {
      // SAM: perturb along the accumulated gradient, re-compute the gradient there, restore the weights.
      s.sam->perturb();
      // Same dropout / stochastic-depth masks as the first pass: SAM differentiates the same stochastic loss.
      accumulate_gradients(model, micro_batches, rank_batch, bf16, cfg.channels_last, optimizer, &seeds);
      timed_all_reduce();
      s.sam->restore();
    }
    if (world > 1) loss_value = dist::all_reduce_sum(comm, {loss_value})[0] / double(world);
    // The one hand-over point: every param.grad() holds the step's gradient averaged over all ranks, before the
    // optimiser clips it.
    const optim::StepStats stats = optimizer.step(lr);
    if (s.ema) s.ema->update(s.specs, st.step);
    st.step += 1;
    st.examples_seen += cfg.batch;
    st.position = loader.position();
    progress.update(st.step, cfg.batch);

    if (!std::isfinite(loss_value))
      throw DivergedError("training diverged at step " + std::to_string(st.step) + " (loss " + std::to_string(loss_value) +
                      "); lower --lr (peak LR was " + std::to_string(s.peak_lr) + ")");

    const double epoch = double(st.position) / double(n_train);
    if (primary && (st.step % std::max<int64_t>(1, cfg.log_every) == 0 || st.step == total_steps)) {
      nlohmann::json line = train_line(st.step, epoch, loss_value, lr, stats, progress.items_per_second(), elapsed());
      if (world > 1) line["allreduce_seconds"] = allreduce_seconds;
      append_line_durable(rd.metrics, line.dump());
    }
    auto now = std::chrono::steady_clock::now();
    if (!cfg.quiet && (now - last_print > std::chrono::seconds(2) || st.step == total_steps)) {
      std::fprintf(stderr, "\r[train] step %lld/%lld  epoch %.2f  loss %.4f  lr %.4g  %.0f img/s  ETA %s   ",
                   (long long)st.step, (long long)total_steps, epoch, loss_value, lr, progress.items_per_second(),
                   Progress::format_duration(progress.eta_seconds()).c_str());
      last_print = now;
    }
    if (eval_schedule.due(st.step)) {
      st.seconds = elapsed();
      EvalPoint p = run_eval(st.step);
      result.final_eval = p;
      if (!cfg.quiet) {
        std::fprintf(stderr, "\n[eval] step %lld:", (long long)st.step);
        if (p.has_holdout)
          std::fprintf(stderr, " holdout loss %.4f top-1 err %.2f%%", p.holdout.loss, 100 * p.holdout.top1_err);
        if (p.has_test) std::fprintf(stderr, " test loss %.4f top-1 err %.2f%%", p.test.loss, 100 * p.test.top1_err);
        std::fprintf(stderr, "\n");
      }
    }
    const bool time_due = std::chrono::duration<double>(now - last_ckpt).count() >= cfg.checkpoint_seconds;
    const bool step_due = cfg.checkpoint_steps > 0 && st.step % cfg.checkpoint_steps == 0;
    if ((time_due || step_due) && st.step < total_steps) {
      st.seconds = elapsed();
      save();
      last_ckpt = std::chrono::steady_clock::now();
    }
    if (st.step == hang_after_step) hang_for_tests(st.step);
  }

  st.seconds = elapsed();
  save();
  result.weights_path = rd.weights;
  if (primary) save_weights(rd.weights, model);
  if (s.ema && primary) {
    s.ema->swap_in(s.specs);  // EMA weights saved beside the raw ones
    save_weights(rd.weights_ema, model);
    s.ema->restore(s.specs);
  }
  result.completed = true;
  result.steps = st.step;
  result.examples_seen = st.examples_seen;
  result.seconds = st.seconds;
  result.train_flops = flops_per_example * double(st.examples_seen);
  if (result.final_eval.step != st.step) result.final_eval = run_eval(st.step);
  if (primary) write_file_atomic(rd.result, to_json(result).dump(2) + "\n");
  return result;
}

}  // namespace nfscale::train
