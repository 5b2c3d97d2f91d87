// process.h - child processes and process identity: spawn a program (optionally this binary) with extra
// environment variables and redirected output, wait for it, signal it, and tell whether a pid is still alive.
#pragma once
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace nfscale {

struct SpawnOptions {
  std::vector<std::pair<std::string, std::string>> env;  // set (or override) in the child's environment
  std::string stdout_path;  // "" = inherit; else the file is created (truncated) and receives stdout
  std::string stderr_path;  // "" = inherit; "/dev/null" to silence
};

// Starts `args[0]` (a path; "/proc/self/exe" runs this binary again) with `args` as argv. Throws UserError naming
// the program when it cannot be started.
pid_t spawn_process(const std::vector<std::string>& args, const SpawnOptions& options = {});

// Waits for `pid`; returns its exit code, or -signal if a signal ended it.
int wait_process(pid_t pid);

// Sends `signal` to `pid` (ignores a pid that is already gone).
void signal_process(pid_t pid, int signal);

// True if a process with this pid exists on this host (it may belong to another user).
bool process_exists(pid_t pid);

// This host's name ("" if unknown).
std::string host_name();

}  // namespace nfscale
