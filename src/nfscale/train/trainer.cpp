// trainer.cpp - implementation of the training loop (see trainer.h for the contract).
#include "nfscale/train/trainer.h"

#include <signal.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nfscale/data/dataset.h"
#include "nfscale/data/loader.h"
#include "nfscale/models/classifier.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/ema.h"
#include "nfscale/optim/sam.h"
#include "nfscale/optim/schedule.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/data_setup.h"
#include "nfscale/train/step.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/cpu_features.h"
#include "nfscale/util/device.h"
#include "nfscale/models/fused_ops.h"
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

std::vector<optim::ParamSpec> param_specs(models::ClassifierImpl& model) {
  std::vector<optim::ParamSpec> specs;
  for (auto& p : model.param_info()) specs.push_back({p.name, p.param, p.weight_decay, p.agc});
  return specs;
}

}  // namespace

bool cpu_has_bf16() { return cpu_features().avx512_bf16; }  // CPUID + XGETBV (util/cpu_features.h)

std::string resolve_precision(const std::string& precision, const std::string& model) {
  // Measured (docs/performance.md, `nfscale bench`, channels_last, final session-3 code): on the mini ladder fp32
  // and bf16 are equally fast within the run-to-run noise (mini-F3 @32: fp32 1005 vs bf16 1027 img/s), so "auto"
  // keeps fp32 there (no bf16 rounding for free); the full-size members gain from bf16 where the CPU has native
  // bf16 (F0 @64: bf16 51 vs fp32 37 img/s).
  if (precision != "auto") return precision;
  const bool mini = model.rfind("mini-", 0) == 0;
  return !mini && cpu_has_bf16() ? "bf16" : "fp32";
}

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
  make_dirs(cfg.run_dir);
  const std::string ckpt_path = (fs::path(cfg.run_dir) / "checkpoint.pt").string();
  const std::string metrics_path = (fs::path(cfg.run_dir) / "metrics.jsonl").string();
  const std::string config_path = (fs::path(cfg.run_dir) / "config.json").string();
  const bool resuming = resume && fs::exists(ckpt_path);
  if (resuming && fs::exists(config_path)) {
    // The stored configuration is authoritative on resume, except for logistics that do not change the result.
    TrainConfig stored = config_from_json(nlohmann::json::parse(read_file(config_path)), config_path);
    stored.quiet = cfg.quiet;
    stored.checkpoint_seconds = cfg.checkpoint_seconds;
    stored.checkpoint_steps = cfg.checkpoint_steps;
    stored.loader_threads = cfg.loader_threads;
    stored.device = cfg.device;
    cfg = stored;
    // Run dirs written before "auto" was resolved at the start always ran fp32 (auto's meaning until session 3):
    // keep that, whatever this host's CPU would choose now.
    if (cfg.precision == "auto") cfg.precision = "fp32";
  }
  // "auto" is resolved once, when the run starts, and the stored config records the choice: a resumed run keeps
  // its precision even on a host whose CPU would resolve "auto" differently.
  cfg.precision = resolve_precision(cfg.precision, cfg.model);
  const std::string precision = cfg.precision;
  const bool bf16 = precision == "bf16";
  write_file_atomic(config_path, to_json(cfg).dump(2) + "\n");
  // Temp files of checkpoint writes interrupted by kill -9 (the checkpoint itself is always the previous good one).
  for (const auto& entry : fs::directory_iterator(cfg.run_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".checkpoint.pt.tmp.", 0) == 0 || name.rfind(".weights", 0) == 0) {
      std::error_code ec;
      fs::remove(entry.path(), ec);
    }
  }

  // ---- data ----
  // Near-duplicate removal is recorded when a run starts and read back on resume, so a resumed run trains on the
  // very indices it started with (the sampler's exactly-once-per-epoch order is a function of them).
  const std::string dedup_path = (fs::path(cfg.run_dir) / "dedup.json").string();
  RunData data = setup_data(cfg, resuming ? dedup_path : "");
  if (data.dedup.applied) {
    if (!data.dedup.from_record) write_file_atomic(dedup_path, data.dedup.record.dump(2) + "\n");
    if (!cfg.quiet) std::fprintf(stderr, "%s -> %s\n", describe_dedup(data.dedup).c_str(), dedup_path.c_str());
  } else if (!resuming) {
    std::error_code ec;
    fs::remove(dedup_path, ec);  // a record of an earlier run in this directory would describe other indices
  }
  const int64_t n_train = static_cast<int64_t>(data.train_indices.size());
  require(n_train > 0, "training set '" + cfg.data + "' has no examples left after the hold-out split (holdout=" +
                           std::to_string(cfg.holdout) + "); lower --holdout");

  // ---- model ----
  models::ModelConfig mc;
  mc.name = cfg.model;
  mc.num_classes = data.num_classes;
  mc.in_channels = data.channels;
  mc.stochastic_depth = cfg.stochastic_depth;
  mc.dropout = cfg.dropout;
  mc.activation = cfg.activation;
  mc.ws_form = cfg.ws_form;
  models::check_resolution(cfg.model, cfg.resolution);
  // The initial weights (and a fine-tuning head) are a function of the seed, not of the process's RNG history.
  torch::manual_seed(derive_seed(cfg.seed, {0x494eull}));
  models::Classifier model = models::build_model(mc);
  const torch::Device device = parse_device(cfg.device, "training setting 'device'");
  const models::ModelCost cost = models::count_cost(*model, cfg.resolution, data.channels);
  if (!cfg.init_from.empty() && !resuming) {
    load_weights(cfg.init_from, *model, "fc.");
    model->reset_classifier(data.num_classes);
  }
  model->to(device);  // before the optimiser and EMA create their state (on the same device)
  // channels_last: inputs are converted per batch; convolution outputs follow the input layout.

  // ---- optimiser, schedule, EMA ----
  optim::SgdAgcOptions oo;
  oo.momentum = cfg.momentum;
  oo.nesterov = cfg.nesterov;
  oo.weight_decay = cfg.weight_decay;
  oo.agc = cfg.clip > 0;
  oo.fused = device.is_cpu() && models::fused_ops_enabled();  // the one-pass update is a CPU kernel
  if (cfg.clip > 0) oo.agc_options.clip = cfg.clip;
  const std::vector<optim::ParamSpec> specs = param_specs(*model);
  optim::SgdAgc optimizer(specs, oo);
  const int64_t total_steps = optim::steps_for_budget(cfg.epochs, n_train, cfg.batch);
  const double peak_lr = cfg.absolute_lr ? cfg.lr : optim::scaled_lr(cfg.lr, cfg.batch);
  const optim::WarmupCosine schedule(peak_lr, total_steps,
                                     optim::warmup_steps_for_epochs(cfg.warmup_epochs, n_train, cfg.batch));
  std::unique_ptr<optim::Ema> ema;
  if (cfg.ema_decay > 0) {
    optim::EmaOptions eo;
    eo.decay = cfg.ema_decay;
    ema = std::make_unique<optim::Ema>(specs, eo);
  }
  std::unique_ptr<optim::Sam> sam;
  if (cfg.sam_rho > 0) {
    optim::SamOptions so;
    so.rho = cfg.sam_rho;
    so.adaptive = cfg.sam_adaptive;
    sam = std::make_unique<optim::Sam>(specs, so);
  }

  LoopState st;
  if (resuming) {
    st = load_checkpoint(ckpt_path, *model, optimizer, ema.get());
    require(st.total_steps == total_steps,
            ckpt_path + ": checkpoint was written for " + std::to_string(st.total_steps) +
                " steps but the configuration gives " + std::to_string(total_steps) +
                "; use a new --run-dir or the original settings");
  } else {
    std::error_code ec;
    fs::remove(metrics_path, ec);
  }
  st.total_steps = total_steps;

  TrainResult result;
  result.total_steps = total_steps;
  result.train_examples = n_train;
  result.params = cost.params;
  result.macs_per_image = cost.macs_per_image;
  result.checkpoint_path = ckpt_path;
  // 3 (forward + backward) x 2 FLOPs per MAC; SAM runs two forward-backward passes per step.
  const double flops_per_example = 6.0 * static_cast<double>(cost.macs_per_image) * (cfg.sam_rho > 0 ? 2.0 : 1.0);

  // ---- evaluation schedule ----
  auto is_eval_step = [&](int64_t step) {  // step = steps completed
    if (step == total_steps) return true;
    if (cfg.eval_every > 0 && step % cfg.eval_every == 0) return true;
    if (cfg.eval_points > 0) {
      for (int64_t k = 1; k < cfg.eval_points; ++k)
        if (step == (total_steps * k) / cfg.eval_points) return true;
    }
    return false;
  };
  const EvalOptions eo = make_eval_options(cfg, data, bf16);
  auto run_eval = [&](int64_t step) {
    EvalPoint p;
    p.step = step;
    p.epoch = double(st.position) / double(n_train);
    p.examples_seen = st.examples_seen;
    p.flops = flops_per_example * double(st.examples_seen);
    if (!data.holdout_indices.empty()) {
      p.holdout = evaluate(*model, data.train_set, data.holdout_indices, eo);
      p.has_holdout = true;
    }
    if (data.test_set) {
      p.test = evaluate(*model, data.test_set, data.test_indices, eo);
      p.has_test = true;
    }
    nlohmann::json line = to_json(p);
    line["type"] = "eval";
    if (ema && cfg.eval_ema) {  // the EMA weights too, logged beside the raw ones
      ema->swap_in(specs);
      if (!data.holdout_indices.empty())
        line["ema_holdout"] = to_json(evaluate(*model, data.train_set, data.holdout_indices, eo));
      if (data.test_set) line["ema_test"] = to_json(evaluate(*model, data.test_set, data.test_indices, eo));
      ema->restore(specs);
    }
    append_line_durable(metrics_path, line.dump());
    if (hooks.on_eval) hooks.on_eval(p);
    return p;
  };

  // ---- loader ----
  data::Loader loader(data.train_set, data.train_indices, make_train_loader_options(cfg, data), st.position);

  auto save = [&] {
    st.position = loader.position();
    save_checkpoint(ckpt_path, *model, optimizer, ema.get(), st);
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
  const int64_t micro = cfg.micro();
  const int64_t n_micro = cfg.batch / micro;
  model->train();

  if (!cfg.quiet)
    std::fprintf(stderr,
                 "[train] %s: %lld params, %.3f GMACs/img at %lld px, %lld steps of %lld (%s), %lld train examples, "
                 "peak LR %.4g, precision %s%s\n",
                 cfg.model.c_str(), (long long)cost.params, cost.macs_per_image / 1e9, (long long)cfg.resolution,
                 (long long)total_steps, (long long)cfg.batch, n_micro > 1 ? "accumulated" : "single", (long long)n_train,
                 peak_lr, precision.c_str(), resuming ? (", resumed at step " + std::to_string(st.step)).c_str() : "");

  std::vector<data::Batch> micro_batches(n_micro);
  while (st.step < total_steps) {
    if (g_signal.load() != 0 || (hooks.should_stop && hooks.should_stop())) {
      st.seconds = elapsed();
      save();
      result.interrupted = true;
      result.steps = st.step;
      result.examples_seen = st.examples_seen;
      result.seconds = st.seconds;
      result.train_flops = flops_per_example * double(st.examples_seen);
      if (!cfg.quiet)
        std::fprintf(stderr, "\n[train] interrupted at step %lld; checkpoint %s (continue with --resume)\n",
                     (long long)st.step, ckpt_path.c_str());
      return result;
    }
    // Every random stream of this step (dropout, stochastic depth) is a function of (seed, step).
    torch::manual_seed(derive_seed(cfg.seed, {0x5745ull, uint64_t(st.step)}));
    for (auto& mb : micro_batches) mb = loader.next();
    const double lr = schedule(st.step);

    // Gradient of the mean loss over the whole effective batch: each micro-batch contributes loss * (micro/batch)
    // (step.h). micro_batches: n_micro x {images [micro, C, R, R], targets [micro, K]}.
    auto accumulate_grads = [&]() -> double {
      return accumulate_gradients(*model, micro_batches, cfg.batch, bf16, cfg.channels_last, optimizer);
    };
    double loss_value = accumulate_grads();
    if (sam) {
      // SAM: perturb along the accumulated gradient, re-compute the gradient there, restore the weights.
      sam->perturb();
      // Same dropout / stochastic-depth masks as the first pass: SAM differentiates the same stochastic loss.
      torch::manual_seed(derive_seed(cfg.seed, {0x5745ull, uint64_t(st.step)}));
      accumulate_grads();
      sam->restore();
    }
    // (Data parallelism: gradients are summed across processes here, before clipping.)
    const optim::StepStats stats = optimizer.step(lr);
    if (ema) ema->update(specs, st.step);
    st.step += 1;
    st.examples_seen += cfg.batch;
    st.position = loader.position();
    progress.update(st.step, cfg.batch);

    if (!std::isfinite(loss_value))
      throw DivergedError("training diverged at step " + std::to_string(st.step) + " (loss " + std::to_string(loss_value) +
                      "); lower --lr (peak LR was " + std::to_string(peak_lr) + ")");

    if (st.step % std::max<int64_t>(1, cfg.log_every) == 0 || st.step == total_steps) {
      nlohmann::json line{{"type", "train"},
                          {"step", st.step},
                          {"epoch", double(st.position) / double(n_train)},
                          {"loss", loss_value},
                          {"lr", lr},
                          {"grad_norm", stats.grad_norm},
                          {"clip_fraction", stats.clip_fraction()},
                          {"images_per_s", progress.items_per_second()},
                          {"seconds", elapsed()}};
      append_line_durable(metrics_path, line.dump());
    }
    auto now = std::chrono::steady_clock::now();
    if (!cfg.quiet && (now - last_print > std::chrono::seconds(2) || st.step == total_steps)) {
      std::fprintf(stderr, "\r[train] step %lld/%lld  epoch %.2f  loss %.4f  lr %.4g  %.0f img/s  ETA %s   ",
                   (long long)st.step, (long long)total_steps, double(st.position) / double(n_train), loss_value, lr,
                   progress.items_per_second(), Progress::format_duration(progress.eta_seconds()).c_str());
      last_print = now;
    }
    if (is_eval_step(st.step)) {
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
  }

  st.seconds = elapsed();
  save();
  result.weights_path = (fs::path(cfg.run_dir) / "weights.pt").string();
  save_weights(result.weights_path, *model);
  if (ema) {
    ema->swap_in(specs);  // EMA weights saved beside the raw ones
    save_weights((fs::path(cfg.run_dir) / "weights_ema.pt").string(), *model);
    ema->restore(specs);
  }
  result.completed = true;
  result.steps = st.step;
  result.examples_seen = st.examples_seen;
  result.seconds = st.seconds;
  result.train_flops = flops_per_example * double(st.examples_seen);
  if (result.final_eval.step != st.step) result.final_eval = run_eval(st.step);
  write_file_atomic((fs::path(cfg.run_dir) / "result.json").string(), to_json(result).dump(2) + "\n");
  return result;
}

}  // namespace nfscale::train
