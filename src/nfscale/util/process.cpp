// process.cpp - posix_spawn-based child processes, waiting, signals and liveness checks.
#include "nfscale/util/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "nfscale/util/error.h"

extern char** environ;

namespace nfscale {

pid_t spawn_process(const std::vector<std::string>& args, const SpawnOptions& options) {
  require(!args.empty(), "spawn_process: no program given");
  std::vector<std::string> argv_copy = args;
  std::vector<char*> argv;
  for (auto& a : argv_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Environment: ours, with options.env set on top.
  std::map<std::string, std::string> overrides(options.env.begin(), options.env.end());
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    if (!overrides.count(key)) env_strings.push_back(entry);
  }
  for (auto& [k, v] : overrides) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!options.stdout_path.empty())
    posix_spawn_file_actions_addopen(&fa, 1, options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!options.stderr_path.empty())
    posix_spawn_file_actions_addopen(&fa, 2, options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw UserError("cannot start process " + args[0] + ": " + std::strerror(rc) +
                    "; check that the program exists and is executable");
  return pid;
}

int wait_process(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
}

void signal_process(pid_t pid, int signal) {
  if (pid > 0) ::kill(pid, signal);
}

bool process_exists(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH); }

std::string host_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

}  // namespace nfscale
