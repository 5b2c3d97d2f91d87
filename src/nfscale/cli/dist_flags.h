// dist_flags.h - the data-parallel flags of `train` and `finetune` (--nproc, --dist-timeout,
// --dist-startup-timeout) and the one entry point that either launches N local ranks or runs this rank.
#pragma once
#include <functional>
#include <string>

namespace CLI {
class App;
}
namespace nfscale::train {
struct TrainHooks;
}

namespace nfscale::cli {

struct DistArgs {
  int nproc = 1;
  double timeout = 60.0;           // seconds, every collective
  double startup_timeout = 300.0;  // seconds, all ranks joining
  std::string device = "cpu";      // the run's --device: CPU ranks use Gloo, CUDA ranks NCCL (one GPU per rank)
};

void add_dist_flags(CLI::App& app, DistArgs& args);

// Under torchrun (WORLD_SIZE set) or inside a rank of --nproc: joins the group (Gloo for CPU ranks; NCCL on
// cuda:LOCAL_RANK for CUDA ranks, unless --device names an index - untested, CUDA builds only) and calls body with hooks
// carrying the communicator; with --nproc N > 1 in a plain process: launches N ranks of this very command line
// (body is not called here; a failed rank's exit code is thrown as CLI::RuntimeError); otherwise body(no comm).
// Returns true when this process should print the command's result (one process, or rank 0).
bool run_ranks(const DistArgs& args, const std::function<void(const train::TrainHooks&)>& body);

}  // namespace nfscale::cli
