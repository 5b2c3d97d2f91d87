// launcher.h - the built-in single-host launcher behind `--nproc N`: re-executes this binary N times as ranks
// 0..N-1 (the environment torchrun would set: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), forwards SIGINT/SIGTERM/SIGHUP to them, and ends the others when one rank fails (they normally
// notice the lost peer themselves within milliseconds; SIGTERM after 1 s, SIGKILL after grace_seconds).
#pragma once
#include <string>
#include <vector>

namespace nfscale::dist {

struct LocalLaunch {
  int nproc = 2;
  std::vector<std::string> args;  // argv of the ranks (args[0] is replaced by this binary)
  double grace_seconds = 5.0;     // after a rank failed: SIGTERM to the others, SIGKILL after this long
};

// Set in every rank's environment so a rank does not launch again.
constexpr const char* kLauncherEnv = "NFSCALE_LAUNCHED_RANK";

// Runs the ranks to completion. Returns 0 if every rank exited 0; otherwise the first failure's exit code
// (128 + signal for a rank killed by a signal), after printing which rank failed.
int launch_local(const LocalLaunch& launch);

// This process's own argv (from /proc/self/cmdline).
std::vector<std::string> own_command_line();

// A TCP port that was free on 127.0.0.1 a moment ago (bound to port 0 and released).
int free_tcp_port();

}  // namespace nfscale::dist
