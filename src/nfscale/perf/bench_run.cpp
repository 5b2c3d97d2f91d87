// bench_run.cpp - `nfscale bench` as a library call (see bench_run.h).
#include "nfscale/perf/bench_run.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/registry.h"
#include "nfscale/perf/gemm_probe.h"
#include "nfscale/perf/model_bench.h"
#include "nfscale/perf/peer_process.h"
#include "nfscale/perf/stats.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/cpu_features.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"
#include "nfscale/util/op_profile.h"
#include "nfscale/util/runtime.h"

namespace nfscale::perf {
namespace {

struct Series {
  std::vector<double> train, infer;  // images/s per repetition
};

void print_series(const char* who, const Series& s, double train_flop, double infer_flop, double peak_bf16) {
  const Spread t = spread(s.train), i = spread(s.infer);
  std::printf("  %-16s train %8.1f img/s [%7.1f..%7.1f] %7.1f GFLOP/s %5.1f%% bf16 peak | infer %8.1f img/s "
              "[%7.1f..%7.1f] %7.1f GFLOP/s\n",
              who, t.median, t.min, t.max, t.median * train_flop / 1e9, 100.0 * t.median * train_flop / 1e9 / peak_bf16,
              i.median, i.min, i.max, i.median * infer_flop / 1e9);
}

// The peer for case c, after checking that it built as many parameters as nfscale.
std::unique_ptr<PeerProcess> start_peer(const BenchOptions& o, const BenchCase& c, const std::string& script,
                                        const ModelBench& nf, int threads) {
  if (script.empty()) return nullptr;
  auto arch = peer_architecture(c.model, nf.classes(), nf.in_channels(), c.res, c.batch, threads);
  if (!o.peer_setting.empty()) arch["setting"] = o.peer_setting;
  const std::string family_script = family_peer_script(script, c.model);
  auto peer = std::make_unique<PeerProcess>(o.python, family_script, arch);
  const int64_t pp = peer->ready().value("params", int64_t(0));
  require(pp == nf.cost().params, "bench: the Python peer's " + c.model + " has " + std::to_string(pp) +
                                      " parameters, nfscale's " + std::to_string(nf.cost().params) +
                                      ": architectures differ (check " + family_script + " against the family's model code)");
  return peer;
}

}  // namespace

bool fused_routes_for(bool switch_on, const c10::Device& device) { return switch_on && device.is_cpu(); }

std::vector<StepSetting> device_settings(const std::string& precision, const c10::Device& device) {
  std::vector<StepSetting> out = candidate_settings(precision);
  if (device.is_cpu()) return out;
  out.erase(std::remove_if(out.begin(), out.end(), [](const StepSetting& st) { return st.bf16; }), out.end());
  require(!out.empty(), "bench --precision " + precision + " --device " + device.str() +
                            ": bf16 is CPU autocast, so a non-CPU device runs fp32 only; pass --precision fp32");
  return out;
}

FusedOpsRestore::FusedOpsRestore() : before_(models::fused_ops_enabled()) {}
FusedOpsRestore::~FusedOpsRestore() { models::set_fused_ops(before_); }

nlohmann::json run_case(const BenchOptions& o, const BenchCase& c, const std::string& peer_script, int threads) {
  const FusedOpsRestore restore;
  const torch::Device device = parse_device(o.device, "bench --device");
  const bool fused = fused_routes_for(restore.at_entry(), device);  // any other device: the ATen path
  const bool time_unfused = o.unfused && fused;
  ModelBench nf(c, device);
  const models::ModelCost& cost = nf.cost();
  auto peer = start_peer(o, c, device.is_cpu() ? peer_script : std::string(), nf, threads);  // the peer is CPU-only
  // Warm up every candidate setting and keep the fastest for training and for inference (the peer chooses its own
  // the same way at start-up).
  const nlohmann::json tried = nf.choose_settings(device_settings(o.precision, device), fused);
  const StepSetting train_set = nf.train_setting(), infer_set = nf.infer_setting();
  if (time_unfused) nf.train_rate(false, 1, train_set), nf.infer_rate(false, 1, infer_set);
  if (o.profile_rows > 0) {
    const auto print_profile = [&](const char* what, const StepSetting& setting, const std::function<void()>& run) {
      std::printf("  per-op profile of one nfscale %s (%s; profiler overhead included):\n%s", what,
                  setting.str().c_str(),
                  format_op_table(profile_ops(run, o.profile_shapes), size_t(o.profile_rows)).c_str());
    };
    // Two more warm steps first: the first steps of a setting still grow the heap and page-fault its new memory in
    // (a 1 MB fill_ took 2.9 ms in the second step of mini-F3), which a profile of steady training must not show.
    nf.train_rate(fused, 2, train_set);
    print_profile("training step", train_set, [&] { nf.train_rate(fused, 1, train_set); });
    nf.infer_rate(fused, 2, infer_set);
    print_profile("inference batch", infer_set, [&] { nf.infer_rate(fused, 1, infer_set); });
  }
  std::printf("\n%s @%lld px, batch %lld: %lld params, %.4f GMACs/img (train %.3f GFLOP/img)\n", c.model.c_str(),
              (long long)c.res, (long long)c.batch, (long long)cost.params, cost.macs_per_image / 1e9,
              cost.train_flops_per_image() / 1e9);
  if (!device.is_cpu())
    std::printf("  on %s: fused CPU routes off (ATen path), fp32 only, no peer; the GEMM probe measures the CPU\n",
                device.str().c_str());
  std::printf("  nfscale (%s) settings: train %s, infer %s (fastest of: %s)\n", fused ? "fused ops on" : "fused ops OFF",
              train_set.str().c_str(), infer_set.str().c_str(), tried.dump().c_str());
  if (peer) {
    const auto& cfg = peer->ready()["config"];
    std::printf("  peer (same params) settings: train %s, infer %s (fastest of: %s)\n",
                cfg.value("train", std::string("?")).c_str(), cfg.value("infer", std::string("?")).c_str(),
                peer->ready()["tried_step_s"].dump().c_str());
  }

  Series main, unfused, py;
  std::vector<double> ratio_train, ratio_infer, gemm32, gemm16, loads, opt_ms;
  for (int r = 0; r < o.reps; ++r) {
    loads.push_back(load_1min());
    gemm32.push_back(gemm_peak(torch::kFloat, o.gemm_n, 3));
    gemm16.push_back(gemm_peak(torch::kBFloat16, o.gemm_n, 3));
    double nf_t = 0, nf_i = 0, py_t = 0, py_i = 0;
    auto run_nf = [&] {
      nf_t = nf.train_rate(fused, o.steps, train_set, &opt_ms);
      nf_i = nf.infer_rate(fused, o.infer_steps, infer_set);
    };
    auto run_py = [&] {
      if (!peer) return;
      py_t = double(c.batch) * o.steps / peer->call({{"cmd", "train"}, {"steps", o.steps}})["seconds"].get<double>();
      py_i = double(c.batch) * o.infer_steps /
             peer->call({{"cmd", "infer"}, {"steps", o.infer_steps}})["seconds"].get<double>();
    };
    if (r % 2 == 0) run_nf(), run_py(); else run_py(), run_nf();  // alternate who goes first
    main.train.push_back(nf_t);
    main.infer.push_back(nf_i);
    if (time_unfused) {
      unfused.train.push_back(nf.train_rate(false, o.steps, train_set));
      unfused.infer.push_back(nf.infer_rate(false, o.infer_steps, infer_set));
    }
    if (peer) {
      py.train.push_back(py_t);
      py.infer.push_back(py_i);
      ratio_train.push_back(nf_t / py_t);
      ratio_infer.push_back(nf_i / py_i);
    }
    std::printf("  rep %d (load %s): nfscale %.1f / %.1f img/s train/infer%s; peer %.1f / %.1f; GEMM fp32 %.0f bf16 "
                "%.0f GFLOP/s\n",
                r, load_string().c_str(), nf_t, nf_i,
                time_unfused ? (", unfused " + std::to_string(std::lround(unfused.train.back())) + " / " +
                                std::to_string(std::lround(unfused.infer.back()))).c_str()
                             : "",
                py_t, py_i, gemm32.back(), gemm16.back());
    std::fflush(stdout);
  }

  const double peak32 = spread(gemm32).max, peak16 = spread(gemm16).max;
  const double train_flop = double(cost.train_flops_per_image()), infer_flop = 2.0 * double(cost.macs_per_image);
  std::printf("  measured GEMM peak (best of run): fp32 %.0f, bf16 %.0f GFLOP/s; median load %.2f\n", peak32, peak16,
              median(loads));
  print_series(fused ? "nfscale fused" : "nfscale (unfused)", main, train_flop, infer_flop, peak16);
  std::printf("  nfscale step %.1f ms at the median, of which %s step %.1f ms (median)\n",
              1e3 * double(c.batch) / median(main.train), nf.optimizer_kind().c_str(), median(opt_ms));
  if (time_unfused) print_series("nfscale unfused", unfused, train_flop, infer_flop, peak16);
  if (peer) print_series("pytorch peer", py, train_flop, infer_flop, peak16);
  const nlohmann::json peer_info = peer ? peer->call({{"cmd", "info"}}) : nlohmann::json();
  if (peer) {
    const Spread rt = spread(ratio_train), ri = spread(ratio_infer);
    std::printf("  nfscale / peer (paired per rep): train %.2fx [%.2f..%.2f], infer %.2fx [%.2f..%.2f]\n", rt.median,
                rt.min, rt.max, ri.median, ri.min, ri.max);
    std::printf("  peak RSS: nfscale %.0f MB (process so far), peer %.0f MB\n", maxrss_kb() / 1024.0,
                peer_info.value("maxrss_kb", 0L) / 1024.0);
  } else {
    std::printf("  peak RSS: nfscale %.0f MB (process so far)\n", maxrss_kb() / 1024.0);
  }
  std::fflush(stdout);
  return {{"model", c.model},
          {"device", device.str()},
          {"res", c.res},
          {"batch", c.batch},
          {"params", cost.params},
          {"macs_per_image", cost.macs_per_image},
          {"fused_ops", fused},
          {"gemm_peak_gflops", {{"fp32", peak32}, {"bf16", peak16}}},
          {"load", loads},
          {"nfscale", {{"train_img_s", main.train}, {"infer_img_s", main.infer}, {"opt_step_ms", opt_ms},
                       {"train_setting", train_set.str()}, {"infer_setting", infer_set.str()}, {"tried", tried}}},
          {"nfscale_unfused", {{"train_img_s", unfused.train}, {"infer_img_s", unfused.infer}}},
          {"peer", {{"train_img_s", py.train}, {"infer_img_s", py.infer}, {"info", peer_info},
                    {"ready", peer ? peer->ready() : nlohmann::json()}}},
          {"ratio_train", ratio_train},
          {"ratio_infer", ratio_infer},
          {"nfscale_maxrss_kb", maxrss_kb()}};
}

nlohmann::json run_bench(const BenchOptions& o) {
  std::vector<BenchCase> cases;
  for (const auto& s : o.cases) cases.push_back(parse_case(s));
  const torch::Device device = parse_device(o.device, "bench --device");  // UserError before anything runs
  device_settings(o.precision, device);  // UserError on a bad --precision (or bf16 off the CPU) before anything runs
  const bool want_peer = o.peer != "none" && device.is_cpu();  // the peer runs on the CPU only
  const std::string peer = want_peer ? find_peer_script(o.peer) : "";
  if (want_peer && peer.empty())
    throw UserError("bench --peer: bench/peer_nfnet.py not found; pass --peer PATH or --peer none");
  const int threads = at::get_num_threads();
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("nfscale bench on %s: %d threads, OpenBLAS threads %d, OMP_WAIT_POLICY=%s (the peer inherits it), CPU %s, "
              "%s, pointwise-GEMM route up to %lld px; each side runs its fastest precision x layout setting "
              "(--precision %s); load %s\n",
              device.str().c_str(), threads, blas_threads(), wait ? wait : "(unset)", cpu_features().describe().c_str(),
              models::fused_ops_status().c_str(), static_cast<long long>(models::pointwise_gemm_max_pixels()),
              o.precision.c_str(), load_string().c_str());
  std::fflush(stdout);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& c : cases) all.push_back(run_case(o, c, peer, threads));
  if (!o.json_out.empty()) write_file_atomic(o.json_out, all.dump(2) + "\n");
  return all;
}

}  // namespace nfscale::perf
