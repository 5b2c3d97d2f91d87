// dist_flags.cpp - data-parallel flags and rank start-up for `train` / `finetune` (see dist_flags.h).
#include "nfscale/cli/dist_flags.h"

#include <CLI/CLI.hpp>
#include <signal.h>
#include <sys/prctl.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>

#include "nfscale/dist/c10d_communicator.h"
#include "nfscale/dist/launch_env.h"
#include "nfscale/dist/launcher.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {

void add_dist_flags(CLI::App& app, DistArgs& a) {
  app.add_option("--nproc", a.nproc,
                 "Data-parallel ranks on this host (the built-in launcher: re-runs this command as N processes, "
                 "Gloo over loopback; --batch is the global batch, --micro-batch is per rank, threads per rank = "
                 "cores / N unless --threads). Under torchrun leave it at 1. See docs/distributed.md")
      ->default_val(1)
      ->group("Distributed");
  app.add_option("--dist-timeout", a.timeout,
                 "Seconds a rank waits in one collective (gradient all-reduce, evaluation, stop vote) before it "
                 "gives up: a hung peer ends the run after this long (a crashed one within milliseconds)")
      ->default_val(60.0)
      ->group("Distributed");
  app.add_option("--dist-startup-timeout", a.startup_timeout,
                 "Seconds the ranks wait for each other at start-up (all must join MASTER_ADDR:MASTER_PORT)")
      ->default_val(300.0)
      ->group("Distributed");
}

bool run_ranks(const DistArgs& a, const std::function<void(const train::TrainHooks&)>& body) {
  require(a.nproc >= 1 && a.nproc <= 256, "--nproc " + std::to_string(a.nproc) + ": need 1..256 ranks on one host");
  require(a.timeout > 0 && a.timeout <= 86400,
          "--dist-timeout " + std::to_string(a.timeout) + ": need a number of seconds in (0, 86400]");
  require(a.startup_timeout > 0 && a.startup_timeout <= 86400,
          "--dist-startup-timeout " + std::to_string(a.startup_timeout) + ": need a number of seconds in (0, 86400]");
  const dist::LaunchEnv env = dist::read_launch_env();
  const bool launched_rank = std::getenv(dist::kLauncherEnv) != nullptr;
  // A rank of --nproc ends (SIGTERM: all ranks stop at a step boundary, rank 0 checkpoints) if its launcher dies.
  if (launched_rank) ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  // A rank writing to a peer that already exited (Gloo's sockets, the TCP store) must get an error it can report,
  // not a SIGPIPE that ends it silently before its last lines (suspected in a rare DistCli failure where rank 0's
  // "[train] stopped after" line was missing after its launcher's kill -9).
  if (launched_rank || env.distributed) std::signal(SIGPIPE, SIG_IGN);
  if (a.nproc > 1 && !launched_rank) {
    require(!env.distributed, "--nproc " + std::to_string(a.nproc) +
                                  " was given but WORLD_SIZE is set (a launcher such as torchrun started this "
                                  "process): use one or the other, e.g. drop --nproc under torchrun");
    dist::LocalLaunch l;
    l.nproc = a.nproc;
    l.args = dist::own_command_line();
    const int code = dist::launch_local(l).exit_code;
    if (code != 0) throw CLI::RuntimeError(code);
    return false;  // rank 0 printed the result
  }
  train::TrainHooks hooks;
  if (!env.distributed || env.world_size == 1) {
    body(hooks);
    return true;
  }
  dist::C10dOptions o;
  const torch::Device device = parse_device(a.device, "--device");
  if (device.is_cuda()) {
    o.backend = dist::Backend::Nccl;
    o.cuda_device = device.has_index() ? device.index() : env.local_rank;
  }
  o.master_addr = env.master_addr;
  o.master_port = env.master_port;
  o.rank = env.rank;
  o.world_size = env.world_size;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout * 1000));
  o.startup_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.startup_timeout * 1000));
  o.prefix = "nfscale/" + std::to_string(env.restart_count);
  dist::C10dCommunicator comm(o);
  hooks.comm = &comm;
  body(hooks);
  return comm.rank() == 0;
}

}  // namespace nfscale::cli
