// cmd_bench.cpp - `nfscale bench`: the flags of the benchmark (perf/bench_run.h does the work): nfscale's training
// step and inference against the Python peer (bench/peer_nfnet.py, peer_vit.py), alternating, with a GEMM peak
// probe.
#include <CLI/CLI.hpp>

#include <memory>

#include "nfscale/cli/command_registry.h"
#include "nfscale/perf/bench_run.h"

namespace nfscale::cli {
namespace {

const RegisterCommand kRegister_cmd_bench(90, [](CLI::App& root) {
  auto o = std::make_shared<perf::BenchOptions>();
  auto* cmd = root.add_subcommand("bench", "Time nfscale's training step and inference against the PyTorch peer "
                                           "(bench/peer_<family>.py), alternating, with a GEMM peak probe");
  cmd->add_option("--case", o->cases, "MODEL:RES:BATCH, repeatable (default mini-F3:32:128 F0:64:32; ViTs too, e.g. "
                                    "mini-ViT-S:32:128)");
  cmd->add_option("--reps", o->reps, "Alternating repetitions")->check(CLI::PositiveNumber);
  cmd->add_option("--steps", o->steps, "Training steps per repetition and side")->check(CLI::PositiveNumber);
  cmd->add_option("--infer-steps", o->infer_steps, "Inference batches per repetition and side")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--peer", o->peer, "Path to peer_nfnet.py (a ViT case uses peer_vit.py beside it), or 'none' "
                                 "(default: found next to the build)");
  cmd->add_option("--peer-setting", o->peer_setting,
                  "Fix the peer's setting instead of letting it search its fastest: PRECISION/LAYOUT/GELU/WS, e.g. "
                  "bf16/channels_last/flat/batchnorm (GELU native|flat|formula, WS batchnorm|varmean)");
  cmd->add_option("--python", o->python, "Python interpreter for the peer (needs python3-torch; default /usr/bin/python3)");
  cmd->add_flag("!--no-unfused", o->unfused,
                "Skip timing nfscale with the fused ops off (never timed when they are off already, e.g. "
                "NFSCALE_FUSED=0: then nfscale's series is the unfused code)");
  cmd->add_option("--precision", o->precision,
                  "nfscale's settings to try: fp32, bf16 (autocast) or best (both, each in NCHW and channels_last; "
                  "the fastest is timed), or one setting: fp32/nchw, fp32/channels_last, bf16/nchw, "
                  "bf16/channels_last. The peer always picks its fastest")
      ->check(CLI::IsMember({"fp32", "bf16", "best", "fp32/nchw", "fp32/channels_last", "bf16/nchw",
                             "bf16/channels_last"}));
  cmd->add_option("--device", o->device,
                  "cpu or cuda[:N]: where nfscale's side runs. Off the CPU the fused CPU routes are off (ATen path), "
                  "only fp32 is tried and no peer is timed (it runs on the CPU)")
      ->capture_default_str();
  cmd->add_option("--json", o->json_out, "Also write every figure as JSON to this file");
  cmd->add_option("--profile", o->profile_rows,
                  "Print the per-op CPU profile (calls, self/total ms) of one nfscale training step and of one inference "
                  "batch, this many rows each")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--profile-shapes", o->profile_shapes,
                "With --profile: one row per op, input shapes and outermost enclosing op (e.g. which aten::copy_ "
                "calls cost the time)");
  cmd->callback([o] { perf::run_bench(*o); });
});

}  // namespace
}  // namespace nfscale::cli
