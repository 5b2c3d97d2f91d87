// train_test_util.h - helpers for the training-engine tests: fresh run directories, small digits configurations,
// running the real `nfscale` binary as a subprocess (posix_spawn), JSON-lines reading, and model comparison.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nfscale/models/registry.h"
#include "nfscale/train/config.h"
#include "nfscale/train/trainer.h"

extern char** environ;

namespace nfscale::train::testing {
namespace fs = std::filesystem;

// A new empty directory under the temp dir, unique per process and name.
inline std::string fresh_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nfscale_train_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every line of a JSON Lines file, parsed.
inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A CI-sized in-process run: digits, mini-F0 at 17 px (the smallest accepted), fp32, no augmentation randomness
// beyond the defaults, quiet, no time-based checkpoints.
inline TrainConfig small_config(const std::string& run_dir, int64_t train_examples = 96, int64_t batch = 16) {
  TrainConfig c;
  c.model = "mini-F0";
  c.data = "digits";
  c.test_data = "none";
  c.train_examples = train_examples;
  c.resolution = models::kMinResolution;
  c.batch = batch;
  c.epochs = 1.0;
  c.precision = "fp32";
  c.loader_threads = 1;
  c.checkpoint_seconds = 1e9;
  c.log_every = 1;
  c.run_dir = run_dir;
  c.quiet = true;
  return c;
}

// Stops the run (as a signal would) once `steps` optimiser steps are done: should_stop is polled before each step.
inline TrainHooks stop_after(int64_t steps) {
  auto calls = std::make_shared<int64_t>(0);
  TrainHooks h;
  h.should_stop = [calls, steps] { return (*calls)++ >= steps; };
  return h;
}

// ---- subprocesses ----

inline std::string binary_path() { return std::string(NFSCALE_BINARY_DIR) + "/bin/nfscale"; }

// Fails the calling test (fatally) when the CLI binary was not built.
#define NFSCALE_REQUIRE_BINARY()                                                                                \
  do {                                                                                                        \
    if (!std::filesystem::exists(::nfscale::train::testing::binary_path()))                                   \
      FAIL() << "the nfscale binary " << ::nfscale::train::testing::binary_path()                             \
             << " is missing: build the nfscale_cli target before test_train";                                \
  } while (0)

// Starts `nfscale args...` with stdout/stderr redirected to files (appended). Returns the pid.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::string& out_path,
                       const std::string& err_path) {
  std::vector<std::string> argv_s{binary_path()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv_s[0].c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits for `pid`: the exit code, or 1000 + signal number when it was killed by a signal.
inline int wait_status(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -1;
}

// True (and the status stored) if `pid` has exited; non-blocking.
inline bool try_wait(pid_t pid, int* code) {
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) != pid) return false;
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
  return true;
}

struct CliResult {
  int code = -1;
  std::string out, err;
};

// Runs `nfscale args...` to completion, capturing its output in files under `dir`.
inline CliResult run_cli(const std::vector<std::string>& args, const std::string& dir) {
  static int counter = 0;
  const std::string base = dir + "/cli" + std::to_string(counter++);
  CliResult r;
  const pid_t pid = spawn_cli(args, base + ".out", base + ".err");
  if (pid < 0) return r;
  r.code = wait_status(pid);
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

// ---- model comparison ----

// Builds the model a digits run trains (10 classes, 1 channel), with uninitialised weights (to be loaded).
inline models::Classifier digits_model(const std::string& name = "mini-F0") {
  models::ModelConfig mc;
  mc.name = name;
  mc.num_classes = 10;
  mc.in_channels = 1;
  mc.init_weights = false;
  return models::build_model(mc);
}

// Number of parameters/buffers that are not bitwise equal (torch::equal) between two models of one architecture.
inline int64_t count_different(models::ClassifierImpl& a, models::ClassifierImpl& b, std::string* first = nullptr) {
  auto pa = a.named_parameters(true), pb = b.named_parameters(true);
  int64_t diff = 0;
  for (auto& item : pa) {
    const torch::Tensor* other = pb.find(item.key());
    if (!other || !torch::equal(item.value(), *other)) {
      if (first && first->empty()) *first = item.key();
      ++diff;
    }
  }
  auto ba = a.named_buffers(true), bb = b.named_buffers(true);
  for (auto& item : ba) {
    const torch::Tensor* other = bb.find(item.key());
    if (!other || !torch::equal(item.value(), *other)) ++diff;
  }
  return diff;
}

}  // namespace nfscale::train::testing
