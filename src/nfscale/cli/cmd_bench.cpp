// cmd_bench.cpp - `nfscale bench`: times nfscale's training step (the real model + soft-target cross-entropy + the
// family's optimiser step, through train::accumulate_gradients as the trainer runs it) and inference against the
// Python peer (bench/peer_nfnet.py or peer_vit.py: the identical architecture on PyTorch with its best CPU settings),
// alternating in one run,
// with a oneDNN GEMM peak probe (fp32, bf16) in the same run. Each side runs its fastest of fp32 / bf16 autocast x
// NCHW / channels_last (chosen by timing after warm-up; --precision narrows nfscale's choice). Reports medians and
// spread, GFLOP/s (6 x counted MACs per training image, 2 x MACs per inference image), % of the measured bf16 peak
// and peak RSS.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nfscale/cli/command_registry.h"
#include "nfscale/data/loader.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/models/nfnet.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/param_spec.h"
#include "nfscale/optim/optimizer_factory.h"
#include "nfscale/train/autocast.h"
#include "nfscale/train/step.h"
#include "nfscale/util/cpu_features.h"
#include "nfscale/util/error.h"
#include "nfscale/util/op_profile.h"
#include "nfscale/util/runtime.h"

namespace nfscale::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::vector<std::string> cases = {"mini-F3:32:128", "F0:64:32"};
  int reps = 5;
  int steps = 3;        // training steps per repetition and side
  int infer_steps = 5;  // inference batches per repetition and side
  std::string peer;     // path to peer_nfnet.py ("" = find it; "none" = no peer)
  std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";  // Debian's torch
  bool unfused = true;  // also time nfscale with the fused ops off
  int profile_rows = 0;  // > 0: print the per-op profile of one training step (this many rows)
  std::string precision = "best";  // fp32 | bf16 | best (the faster of the four precision x layout settings)
  std::string json_out;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string load_string() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

long maxrss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Best GFLOP/s of an n x n x n GEMM in `dtype` over `tries`, each try timing two routes and keeping the faster:
// at::matmul (oneDNN for bf16; OpenBLAS for fp32, which nfscale runs single-threaded, see util/runtime.h) and a
// 1x1 convolution over a channels_last [1, n, s, s] image with s*s = n (oneDNN for both dtypes, on every intra-op
// thread - the route the network's convolutions take).
double gemm_peak(torch::Dtype dtype, int64_t n, int tries) {
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  const auto s = int64_t(std::lround(std::sqrt(double(n))));
  auto x = torch::randn({1, n, s, s}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);  // [1, n, s, s]
  auto w = torch::randn({n, n, 1, 1}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);  // [n, n, 1, 1]
  torch::NoGradGuard ng;
  torch::matmul(a, b);
  torch::conv2d(x, w);
  double best = 0.0;
  for (int i = 0; i < tries; ++i) {
    auto t0 = Clock::now();
    auto c = torch::matmul(a, b);  // [n, n]
    best = std::max(best, 2.0 * double(n) * n * n / seconds_since(t0) / 1e9);
    t0 = Clock::now();
    auto y = torch::conv2d(x, w);  // [1, n, s, s]: n*s*s*n MACs
    best = std::max(best, 2.0 * double(n) * s * s * n / seconds_since(t0) / 1e9);
  }
  return best;
}

// The peer process: JSON lines over two pipes.
class Peer {
 public:
  Peer(const std::string& python, const std::string& script, const nlohmann::json& arch) {
    int in[2], out[2];
    require(pipe(in) == 0 && pipe(out) == 0, "bench: cannot create pipes for the peer");
    pid_ = fork();
    require(pid_ >= 0, "bench: fork failed");
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      const std::string a = arch.dump();
      // Same OpenBLAS thread count as nfscale (its own pool fights the OpenMP threads; see util/runtime.h), so the
      // peer gets the fix too unless the caller set OPENBLAS_NUM_THREADS.
      const int blas = blas_threads();
      if (blas > 0) setenv("OPENBLAS_NUM_THREADS", std::to_string(blas).c_str(), /*overwrite=*/0);
      execlp(python.c_str(), python.c_str(), script.c_str(), a.c_str(), (char*)nullptr);
      std::perror("bench: exec python");
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
    ready_ = read();
  }
  ~Peer() {
    if (to_) {
      std::fputs("{\"cmd\":\"quit\"}\n", to_);
      std::fclose(to_);
    }
    if (from_) std::fclose(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  nlohmann::json call(const nlohmann::json& cmd) {
    std::fputs((cmd.dump() + "\n").c_str(), to_);
    std::fflush(to_);
    return read();
  }
  const nlohmann::json& ready() const { return ready_; }

 private:
  nlohmann::json read() {
    std::string line;
    int c;
    while ((c = std::fgetc(from_)) != EOF && c != '\n') line.push_back(char(c));
    require(!line.empty(), "bench: the Python peer exited early (run it by hand to see why)");
    return nlohmann::json::parse(line);
  }
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  nlohmann::json ready_;
};

std::string find_peer(const std::string& given) {
  if (!given.empty()) return given;
  std::vector<fs::path> tries = {"bench/peer_nfnet.py"};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tries.push_back(exe.parent_path() / "../../bench/peer_nfnet.py");
    tries.push_back(exe.parent_path() / "../bench/peer_nfnet.py");
  }
  for (const auto& p : tries)
    if (fs::exists(p)) return fs::weakly_canonical(p).string();
  return "";
}

struct Case {
  std::string model;
  int64_t res = 0, batch = 0;
};

Case parse_case(const std::string& s) {
  Case c;
  const auto a = s.find(':'), b = s.rfind(':');
  require(a != std::string::npos && b != a, "bench --case '" + s + "': expected MODEL:RES:BATCH, e.g. mini-F3:32:128");
  c.model = s.substr(0, a);
  c.res = std::stoll(s.substr(a + 1, b - a - 1));
  c.batch = std::stoll(s.substr(b + 1));
  models::model_info(c.model);  // any family's member (UserError listing the names otherwise)
  models::check_resolution(c.model, c.res);
  require(c.batch >= 1, "bench --case '" + s + "': batch must be >= 1");
  return c;
}

struct Series {
  std::vector<double> train, infer;  // images/s per repetition
};

// How nfscale runs a step: autocast precision and input/activation memory format (the trainer's --precision and
// --channels-last).
struct StepSetting {
  bool bf16 = false, channels_last = true;
  std::string str() const { return std::string(bf16 ? "bf16" : "fp32") + (channels_last ? "/channels_last" : "/nchw"); }
};

std::vector<StepSetting> candidate_settings(const std::string& precision) {
  std::vector<StepSetting> out;
  for (bool bf16 : {false, true}) {
    if ((precision.rfind("fp32", 0) == 0 && bf16) || (precision.rfind("bf16", 0) == 0 && !bf16)) continue;
    for (bool cl : {false, true}) {
      const StepSetting st{bf16, cl};
      // A full setting name ("fp32/nchw", "bf16/channels_last", ...) times that one setting only.
      if (precision.find('/') != std::string::npos && precision != st.str()) continue;
      out.push_back(st);
    }
  }
  return out;
}

void print_series(const char* who, const Series& s, double train_flop, double infer_flop, double peak_bf16) {
  auto mn = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); };
  auto mx = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); };
  const double t = median(s.train), i = median(s.infer);
  std::printf("  %-16s train %8.1f img/s [%7.1f..%7.1f] %7.1f GFLOP/s %5.1f%% bf16 peak | infer %8.1f img/s [%7.1f..%7.1f] "
              "%7.1f GFLOP/s\n",
              who, t, mn(s.train), mx(s.train), t * train_flop / 1e9, 100.0 * t * train_flop / 1e9 / peak_bf16, i,
              mn(s.infer), mx(s.infer), i * infer_flop / 1e9);
}

nlohmann::json run_case(const BenchOptions& o, const Case& c, const std::string& peer_script, int threads) {
  const models::ModelInfo spec = models::model_info(c.model);
  const models::ModelFamily& family = models::family_of(c.model);
  models::ModelConfig mc;
  mc.name = c.model;
  mc.resolution = c.res;
  mc.num_classes = spec.ref_num_classes;
  mc.in_channels = spec.ref_in_channels;
  torch::manual_seed(0);
  auto model = models::build_model(mc);
  const models::ModelCost cost = models::count_cost(*model, c.res, mc.in_channels);
  {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("skip_gain") != std::string::npos) p.value().fill_(0.5);  // every branch's backward runs
  }
  // The family's optimiser, as the trainer uses it (NFNets SGD+AGC, ViTs AdamW with global-norm clipping).
  optim::OptimizerConfig oc = family.train_defaults().optimizer;
  oc.adamw.peak_lr = 1e-3;
  if (family.name() == "vit") {  // the big_vision head starts at zero: make every gradient non-zero, as the peer
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().rfind(family.head_prefix(), 0) == 0 && p.value().dim() == 2) p.value().normal_(0.0, 0.01);
  }
  auto opt_ptr = optim::make_optimizer(oc, model->param_info());
  optim::Optimizer& opt = *opt_ptr;
  data::Batch batch;
  batch.images = torch::randn({c.batch, mc.in_channels, c.res, c.res});
  batch.labels = torch::randint(0, mc.num_classes, {c.batch});
  batch.targets = torch::full({c.batch, mc.num_classes}, 0.1 / double(mc.num_classes));
  batch.targets.scatter_add_(1, batch.labels.view({-1, 1}), torch::full({c.batch, 1}, 0.9));
  const std::vector<data::Batch> micro = {batch};  // images [B, C, R, R] NCHW; the step converts the layout
  auto x_cl = models::to_channels_last(batch.images);

  std::vector<double> opt_ms;  // the optimiser step's share of a fused training step
  StepSetting train_set, infer_set;
  // opt_ms_out (the timed repetitions only): mean optimiser step time of this call, in ms.
  auto train_rate = [&](bool fused, int steps, const StepSetting& st, std::vector<double>* opt_ms_out = nullptr) {
    models::set_fused_ops(fused);
    model->train();
    const auto t0 = Clock::now();
    double opt_s = 0.0;
    for (int s = 0; s < steps; ++s) {
      train::accumulate_gradients(*model, micro, c.batch, st.bf16, st.channels_last, opt);
      const auto t1 = Clock::now();
      opt.step(1e-3);
      opt_s += seconds_since(t1);
    }
    if (opt_ms_out) opt_ms_out->push_back(1e3 * opt_s / steps);
    return double(c.batch) * steps / seconds_since(t0);
  };
  auto infer_rate = [&](bool fused, int steps, const StepSetting& st) {
    models::set_fused_ops(fused);
    model->eval();
    const auto& x = st.channels_last ? x_cl : batch.images;
    const auto t0 = Clock::now();
    for (int s = 0; s < steps; ++s) {
      c10::InferenceMode im;
      train::AutocastScope ac(st.bf16);
      auto y = model->forward(x);
    }
    model->train();
    return double(c.batch) * steps / seconds_since(t0);
  };

  // The peer gets the family's full spec (peer_nfnet.py / peer_vit.py read their fields) and the case.
  nlohmann::json arch = family.spec_json(c.model);
  arch.update(nlohmann::json{{"classes", mc.num_classes},
                             {"in_channels", mc.in_channels},
                             {"res", c.res},
                             {"batch", c.batch},
                             {"threads", threads}});
  std::unique_ptr<Peer> peer;
  if (!peer_script.empty()) {
    // peer_<family>.py beside the NFNet peer
    const std::string script = (fs::path(peer_script).parent_path() / ("peer_" + family.name() + ".py")).string();
    peer = std::make_unique<Peer>(o.python, script, arch);
    const int64_t pp = peer->ready().value("params", int64_t(0));
    require(pp == cost.params, "bench: the Python peer's " + c.model + " has " + std::to_string(pp) +
                                   " parameters, nfscale's " + std::to_string(cost.params) + ": architectures differ");
  }
  // Warm-up every candidate setting, then keep the fastest for training and for inference (best of 2 timings;
  // the peer chooses its own the same way at start-up).
  double best_train = 0, best_infer = 0;
  nlohmann::json tried = nlohmann::json::object();
  for (const StepSetting& st : candidate_settings(o.precision)) {
    train_rate(true, 1, st);
    infer_rate(true, 1, st);
    const double tr = std::max(train_rate(true, 1, st), train_rate(true, 1, st));
    const double in = std::max(infer_rate(true, 1, st), infer_rate(true, 1, st));
    tried[st.str()] = {{"train_img_s", tr}, {"infer_img_s", in}};
    if (tr > best_train) best_train = tr, train_set = st;
    if (in > best_infer) best_infer = in, infer_set = st;
  }
  if (o.unfused) train_rate(false, 1, train_set), infer_rate(false, 1, infer_set);
  const bool fused_default = [] { models::set_fused_ops(true); return models::fused_self_check(); }();

  if (o.profile_rows > 0) {
    std::printf("  per-op profile of one nfscale training step (%s; profiler overhead included):\n%s",
                train_set.str().c_str(),
                format_op_table(profile_ops([&] { train_rate(true, 1, train_set); }), size_t(o.profile_rows)).c_str());
  }

  Series fused, unfused, py;
  std::vector<double> ratio_train, ratio_infer, gemm32, gemm16, loads;
  std::printf("\n%s @%lld px, batch %lld: %lld params, %.4f GMACs/img (train %.3f GFLOP/img)\n", c.model.c_str(),
              (long long)c.res, (long long)c.batch, (long long)cost.params, cost.macs_per_image / 1e9,
              cost.train_flops_per_image() / 1e9);
  std::printf("  nfscale settings: train %s, infer %s (fastest of: %s)\n", train_set.str().c_str(),
              infer_set.str().c_str(), tried.dump().c_str());
  if (peer) {
    const auto& cfg = peer->ready()["config"];
    std::printf("  peer (same params) settings: train %s, infer %s (fastest of: %s)\n",
                cfg.value("train", std::string("?")).c_str(), cfg.value("infer", std::string("?")).c_str(),
                peer->ready()["tried_step_s"].dump().c_str());
  }
  for (int r = 0; r < o.reps; ++r) {
    loads.push_back(std::atof(load_string().c_str()));
    gemm32.push_back(gemm_peak(torch::kFloat, 1024, 3));
    gemm16.push_back(gemm_peak(torch::kBFloat16, 1024, 3));
    double nf_t = 0, nf_i = 0, py_t = 0, py_i = 0;
    auto run_nf = [&] {
      nf_t = train_rate(true, o.steps, train_set, &opt_ms);
      nf_i = infer_rate(true, o.infer_steps, infer_set);
    };
    auto run_py = [&] {
      if (!peer) return;
      py_t = double(c.batch) * o.steps / peer->call({{"cmd", "train"}, {"steps", o.steps}})["seconds"].get<double>();
      py_i = double(c.batch) * o.infer_steps / peer->call({{"cmd", "infer"}, {"steps", o.infer_steps}})["seconds"].get<double>();
    };
    if (r % 2 == 0) run_nf(), run_py(); else run_py(), run_nf();
    fused.train.push_back(nf_t);
    fused.infer.push_back(nf_i);
    if (o.unfused) {
      unfused.train.push_back(train_rate(false, o.steps, train_set));
      unfused.infer.push_back(infer_rate(false, o.infer_steps, infer_set));
    }
    if (peer) {
      py.train.push_back(py_t);
      py.infer.push_back(py_i);
      ratio_train.push_back(nf_t / py_t);
      ratio_infer.push_back(nf_i / py_i);
    }
    std::printf("  rep %d (load %s): nfscale %.1f / %.1f img/s train/infer%s; peer %.1f / %.1f; GEMM fp32 %.0f bf16 %.0f GFLOP/s\n",
                r, load_string().c_str(), nf_t, nf_i,
                o.unfused ? (", unfused " + std::to_string(std::lround(unfused.train.back())) + " / " +
                             std::to_string(std::lround(unfused.infer.back()))).c_str() : "",
                py_t, py_i, gemm32.back(), gemm16.back());
    std::fflush(stdout);
  }
  models::set_fused_ops(fused_default);
  const double peak32 = *std::max_element(gemm32.begin(), gemm32.end());
  const double peak16 = *std::max_element(gemm16.begin(), gemm16.end());
  const double train_flop = double(cost.train_flops_per_image()), infer_flop = 2.0 * double(cost.macs_per_image);
  std::printf("  measured GEMM peak (best of run): fp32 %.0f, bf16 %.0f GFLOP/s; median load %.2f\n", peak32, peak16,
              median(loads));
  print_series("nfscale fused", fused, train_flop, infer_flop, peak16);
  std::printf("  nfscale step %.1f ms at the median, of which %s step %.1f ms (median)\n",
              1e3 * double(c.batch) / median(fused.train), opt.kind().c_str(), median(opt_ms));
  if (o.unfused) print_series("nfscale unfused", unfused, train_flop, infer_flop, peak16);
  if (peer) print_series("pytorch peer", py, train_flop, infer_flop, peak16);
  const nlohmann::json peer_info = peer ? peer->call({{"cmd", "info"}}) : nlohmann::json();
  if (peer) {
    auto mn = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    auto mx = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
    std::printf("  nfscale / peer (paired per rep): train %.2fx [%.2f..%.2f], infer %.2fx [%.2f..%.2f]\n",
                median(ratio_train), mn(ratio_train), mx(ratio_train), median(ratio_infer), mn(ratio_infer),
                mx(ratio_infer));
    std::printf("  peak RSS: nfscale %.0f MB (process so far), peer %.0f MB\n", maxrss_kb() / 1024.0,
                peer_info.value("maxrss_kb", 0L) / 1024.0);
  } else {
    std::printf("  peak RSS: nfscale %.0f MB (process so far)\n", maxrss_kb() / 1024.0);
  }
  return {{"model", c.model},
          {"res", c.res},
          {"batch", c.batch},
          {"params", cost.params},
          {"macs_per_image", cost.macs_per_image},
          {"gemm_peak_gflops", {{"fp32", peak32}, {"bf16", peak16}}},
          {"load", loads},
          {"nfscale", {{"train_img_s", fused.train}, {"infer_img_s", fused.infer}, {"opt_step_ms", opt_ms},
                       {"train_setting", train_set.str()}, {"infer_setting", infer_set.str()}, {"tried", tried}}},
          {"nfscale_unfused", {{"train_img_s", unfused.train}, {"infer_img_s", unfused.infer}}},
          {"peer", {{"train_img_s", py.train}, {"infer_img_s", py.infer}, {"info", peer_info},
                    {"ready", peer ? peer->ready() : nlohmann::json()}}},
          {"ratio_train", ratio_train},
          {"ratio_infer", ratio_infer},
          {"nfscale_maxrss_kb", maxrss_kb()}};
}

void run(const BenchOptions& o) {
  const std::string peer = o.peer == "none" ? "" : find_peer(o.peer);
  if (o.peer != "none" && peer.empty())
    throw UserError("bench --peer: bench/peer_nfnet.py not found; pass --peer PATH or --peer none");
  const int threads = at::get_num_threads();
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("nfscale bench: %d threads, OpenBLAS threads %d, OMP_WAIT_POLICY=%s (the peer inherits it), CPU %s, "
              "%s, pointwise-GEMM route up to %lld px; each side runs its fastest precision x layout setting "
              "(--precision %s); load %s\n",
              threads, blas_threads(), wait ? wait : "(unset)", cpu_features().describe().c_str(),
              models::fused_ops_status().c_str(), static_cast<long long>(models::pointwise_gemm_max_pixels()),
              o.precision.c_str(), load_string().c_str());
  nlohmann::json all = nlohmann::json::array();
  for (const auto& s : o.cases) all.push_back(run_case(o, parse_case(s), peer, threads));
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    require(bool(f), "bench --json: cannot write " + o.json_out);
    f << all.dump(2) << "\n";
  }
}

const RegisterCommand kRegister(90, [](CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = root.add_subcommand("bench", "Time nfscale's training step and inference against the PyTorch peer "
                                           "(bench/peer_nfnet.py), alternating, with a GEMM peak probe");
  cmd->add_option("--case", o->cases, "MODEL:RES:BATCH, repeatable (default mini-F3:32:128 F0:64:32; ViTs too, e.g. mini-ViT-S:32:128)");
  cmd->add_option("--reps", o->reps, "Alternating repetitions")->check(CLI::PositiveNumber);
  cmd->add_option("--steps", o->steps, "Training steps per repetition and side")->check(CLI::PositiveNumber);
  cmd->add_option("--infer-steps", o->infer_steps, "Inference batches per repetition and side")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--peer", o->peer, "Path to peer_nfnet.py, or 'none' (default: found next to the build)");
  cmd->add_option("--python", o->python, "Python interpreter for the peer");
  cmd->add_flag("!--no-unfused", o->unfused, "Skip timing nfscale with the fused ops off");
  cmd->add_option("--precision", o->precision,
                  "nfscale's settings to try: fp32, bf16 (autocast) or best (both, each in NCHW and channels_last; "
                  "the fastest is timed), or one setting: fp32/nchw, fp32/channels_last, bf16/nchw, "
                  "bf16/channels_last. The peer always picks its fastest")
      ->check(CLI::IsMember({"fp32", "bf16", "best", "fp32/nchw", "fp32/channels_last", "bf16/nchw",
                             "bf16/channels_last"}));
  cmd->add_option("--json", o->json_out, "Also write every figure as JSON to this file");
  cmd->add_option("--profile", o->profile_rows,
                  "Print the per-op CPU profile (calls, self/total ms) of one nfscale training step, this many rows")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([o] { run(*o); });
});

}  // namespace
}  // namespace nfscale::cli
