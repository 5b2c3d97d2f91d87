// test_process.cpp - child processes: exit codes, extra environment, redirected output, signals, liveness,
// and a clear error for a program that cannot start.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "nfscale/util/error.h"
#include "nfscale/util/process.h"

namespace nfscale {
namespace {
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Process, ExitCodeEnvironmentAndRedirectedOutput) {
  const fs::path dir = fs::temp_directory_path() / ("nfscale_process_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  SpawnOptions o;
  o.env = {{"NFSCALE_PROCESS_TEST", "value with spaces"}, {"HOME", "/overridden"}};
  o.stdout_path = (dir / "out.txt").string();
  o.stderr_path = (dir / "err.txt").string();
  pid_t pid = spawn_process({"/bin/sh", "-c", "echo \"$NFSCALE_PROCESS_TEST|$HOME\"; echo oops >&2; exit 7"}, o);
  EXPECT_EQ(wait_process(pid), 7);
  EXPECT_EQ(slurp(dir / "out.txt"), "value with spaces|/overridden\n");
  EXPECT_EQ(slurp(dir / "err.txt"), "oops\n");
  fs::remove_all(dir);
}

TEST(Process, SignalsAndLiveness) {
  pid_t pid = spawn_process({"/bin/sleep", "30"});
  EXPECT_TRUE(process_exists(pid));
  signal_process(pid, SIGKILL);
  EXPECT_EQ(wait_process(pid), -SIGKILL);
  EXPECT_FALSE(process_exists(pid));  // reaped: the pid is free
  EXPECT_TRUE(process_exists(::getpid()));
  EXPECT_FALSE(process_exists(0));
  EXPECT_FALSE(host_name().empty());
}

TEST(Process, MissingProgramIsAUserError) {
  try {
    spawn_process({"/nonexistent/nfscale-no-such-program"});
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/nfscale-no-such-program"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale
