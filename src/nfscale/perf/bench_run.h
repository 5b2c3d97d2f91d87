// bench_run.h - `nfscale bench` as a library call: for each case, nfscale's training step and inference against
// the Python peer (bench/peer_nfnet.py), alternating within each repetition, with the GEMM peak probe in the same
// run; prints the table and returns every figure as JSON. Leaves the process-wide fused-ops switch as it found it.
#pragma once
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "nfscale/perf/bench_case.h"

namespace nfscale::perf {

struct BenchOptions {
  std::vector<std::string> cases = {"mini-F3:32:128", "F0:64:32"};  // MODEL:RES:BATCH
  int reps = 5;
  int steps = 3;        // training steps per repetition and side
  int infer_steps = 5;  // inference batches per repetition and side
  std::string peer;     // path to peer_nfnet.py ("" = find it; "none" = no peer)
  std::string python = "/usr/bin/python3";  // Debian's interpreter, which has python3-torch
  std::string peer_setting;  // "" = the peer searches its fastest; else PRECISION/LAYOUT/GELU/WS, e.g.
                             // bf16/channels_last/flat/batchnorm (see bench/peer_nfnet.py)
  bool unfused = true;  // also time nfscale with the fused ops off (only when they are on to begin with)
  int profile_rows = 0;  // > 0: print the per-op profiles of one training step and one inference batch (rows each)
  bool profile_shapes = false;  // the profiles' rows by op, input shapes and enclosing op (util/op_profile.h)
  std::string precision = "best";  // see candidate_settings()
  int gemm_n = 1024;  // GEMM probe size (a perfect square)
  std::string json_out;  // also write every figure here ("" = no file)
  // cpu | cuda[:N] (util/device.h). On a non-CPU device the fused CPU routes are off (the ATen path runs), only fp32
  // settings are tried (bf16 is CPU autocast), no unfused series and no peer (the peer runs on the CPU) are timed.
  std::string device = "cpu";
};

// Whether nfscale's series runs the fused CPU routes: the switch is on and the device is the CPU.
bool fused_routes_for(bool switch_on, const c10::Device& device);

// The settings of `precision` (candidate_settings) that `device` can run: all on the CPU, the fp32 ones elsewhere.
// UserError naming --precision and --device when none is left (e.g. bf16 on cuda).
std::vector<StepSetting> device_settings(const std::string& precision, const c10::Device& device);

// Sets the fused-ops switch back to the value it had at construction when it goes out of scope (also on an
// exception), so NFSCALE_FUSED=0 or a caller's set_fused_ops() outlives a benchmark.
class FusedOpsRestore {
 public:
  FusedOpsRestore();
  ~FusedOpsRestore();
  bool at_entry() const { return before_; }
  FusedOpsRestore(const FusedOpsRestore&) = delete;
  FusedOpsRestore& operator=(const FusedOpsRestore&) = delete;

 private:
  bool before_;
};

// One case, on options.device. nfscale runs with the fused ops as they are switched on entry (its "fused" series;
// with NFSCALE_FUSED=0 or on a non-CPU device that is the unfused code, and no separate unfused series is timed).
// peer_script "" = no peer.
nlohmann::json run_case(const BenchOptions& options, const BenchCase& c, const std::string& peer_script, int threads);

// Every case of `options`; UserError on a bad case, precision or missing peer script. Writes options.json_out
// atomically when set.
nlohmann::json run_bench(const BenchOptions& options);

}  // namespace nfscale::perf
