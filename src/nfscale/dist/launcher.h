// launcher.h - the built-in single-host launcher behind `--nproc N`: re-executes this binary N times as ranks
// 0..N-1 (the environment torchrun would set: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), forwards SIGINT/SIGTERM/SIGHUP to them, and ends the others when one rank fails (they normally
// notice the lost peer themselves within milliseconds; SIGTERM after 1 s, SIGKILL after grace_seconds).
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace nfscale::dist {

struct LocalLaunch {
  int nproc = 2;
  std::vector<std::string> args;  // argv of the ranks (args[0] is replaced by this binary)
  std::vector<std::pair<std::string, std::string>> env;  // further variables set in every rank's environment
  double grace_seconds = 5.0;     // after a rank failed: SIGTERM to the others, SIGKILL after this long
  // Polled every 20 ms while the ranks run (may be empty): once it returns true, every rank gets SIGTERM (they
  // stop together at a step boundary, rank 0 checkpoints), as if the launcher itself had been sent SIGTERM.
  std::function<bool()> should_stop;
};

// Set in every rank's environment so a rank does not launch again.
constexpr const char* kLauncherEnv = "NFSCALE_LAUNCHED_RANK";

struct LaunchResult {
  int exit_code = 0;    // 0 if every rank exited 0, else the first failure's (128 + signal for a killed rank)
  int stop_signal = 0;  // the signal the ranks were asked to stop with (one this process received and forwarded,
                        // or SIGTERM for should_stop); 0 if none
};

// Runs the ranks to completion, printing which rank failed (and how) if one did.
LaunchResult launch_local(const LocalLaunch& launch);

// This process's own argv (from /proc/self/cmdline).
std::vector<std::string> own_command_line();

// A TCP port that was free on 127.0.0.1 a moment ago (bound to port 0 and released).
int free_tcp_port();

}  // namespace nfscale::dist
