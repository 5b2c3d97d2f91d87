// launcher.cpp - the `--nproc N` launcher (see launcher.h): spawn, forward signals, end the group on a failure.
#include "nfscale/dist/launcher.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>

#include "nfscale/util/error.h"
#include "nfscale/util/process.h"

namespace nfscale::dist {
namespace {

std::atomic<int> g_forward{0};
extern "C" void on_launcher_signal(int sig) { g_forward.store(sig); }

}  // namespace

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  for (char c : all) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) args.push_back(cur);
  return args;
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  require(fd >= 0, "--nproc: cannot open a socket to pick a free MASTER_PORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  require(ok, "--nproc: cannot find a free TCP port on 127.0.0.1 for MASTER_PORT; set MASTER_PORT and use torchrun");
  return ntohs(addr.sin_port);
}

LaunchResult launch_local(const LocalLaunch& launch) {
  require(launch.nproc >= 1, "--nproc: need at least 1 rank");
  const int port = free_tcp_port();
  std::vector<std::string> args = launch.args;
  require(!args.empty(), "--nproc: empty command line");
  args[0] = "/proc/self/exe";

  struct sigaction sa {}, old_int {}, old_term {}, old_hup {};
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  g_forward.store(0);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);

  std::vector<pid_t> pids;
  for (int r = 0; r < launch.nproc; ++r) {
    SpawnOptions so;
    so.env = {{"RANK", std::to_string(r)},
              {"LOCAL_RANK", std::to_string(r)},
              {"WORLD_SIZE", std::to_string(launch.nproc)},
              {"LOCAL_WORLD_SIZE", std::to_string(launch.nproc)},
              {"MASTER_ADDR", "127.0.0.1"},
              {"MASTER_PORT", std::to_string(port)},
              {"TORCHELASTIC_RESTART_COUNT", "0"},
              {kLauncherEnv, std::to_string(r)}};
    so.env.insert(so.env.end(), launch.env.begin(), launch.env.end());
    pids.push_back(spawn_process(args, so));
  }

  std::vector<bool> alive(pids.size(), true);
  size_t n_alive = pids.size();
  LaunchResult result;
  auto deadline = std::chrono::steady_clock::time_point::max(), term_at = deadline;
  bool stop_sent = false;
  while (n_alive > 0) {
    if (!stop_sent && launch.should_stop && launch.should_stop()) {
      stop_sent = true;
      g_forward.store(SIGTERM);
    }
    if (const int sig = g_forward.exchange(0); sig != 0) {
      if (result.stop_signal == 0) result.stop_signal = sig;
      for (size_t i = 0; i < pids.size(); ++i)
        if (alive[i]) signal_process(pids[i], sig);
    }
    for (size_t i = 0; i < pids.size(); ++i) {
      if (!alive[i]) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
      alive[i] = false;
      --n_alive;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && result.exit_code == 0) {
        result.exit_code = code;
        if (WIFSIGNALED(status))
          std::fprintf(stderr, "[launch] rank %zu was killed by signal %d; ending the other ranks\n", i,
                       WTERMSIG(status));
        else
          std::fprintf(stderr, "[launch] rank %zu exited with code %d; ending the other ranks\n", i, code);
        // The others normally notice the lost peer themselves within milliseconds (and say so); SIGTERM after
        // a second, SIGKILL after the grace period, for ranks that are stuck.
        const auto now = std::chrono::steady_clock::now();
        term_at = now + std::chrono::seconds(1);
        deadline = now + std::chrono::milliseconds(static_cast<int64_t>(launch.grace_seconds * 1000));
      }
    }
    if (std::chrono::steady_clock::now() > term_at) {
      for (size_t j = 0; j < pids.size(); ++j)
        if (alive[j]) signal_process(pids[j], SIGTERM);
      term_at = std::chrono::steady_clock::time_point::max();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t j = 0; j < pids.size(); ++j)
        if (alive[j]) signal_process(pids[j], SIGKILL);
      deadline = std::chrono::steady_clock::time_point::max();
    }
    if (n_alive > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  return result;
}

}  // namespace nfscale::dist
