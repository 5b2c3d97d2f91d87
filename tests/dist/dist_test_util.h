// dist_test_util.h - helpers for the data-parallel CLI tests: the small 2-rank digits run's command line, the
// rank processes under a --nproc launcher, and weight comparison of two run dirs.
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include "../train/train_test_util.h"
#include "nfscale/train/checkpoint.h"

namespace nfscale::dist::testing {
using namespace nfscale::train::testing;

// `nfscale train` on 384 digits at 17 px, global batch 16 (8 per rank with --nproc 2), dropout 0.2 so the
// per-global-micro-batch seeds are exercised, a checkpoint every step.
inline std::vector<std::string> train_args(const std::string& dir, int nproc, double epochs = 1.0,
                                           bool resume = false) {
  std::vector<std::string> a{"--threads", "1", "train", "--model", "mini-F0", "--data", "digits", "--test-data",
                             "none", "--holdout", "32", "--train-examples", "384", "--res", "17", "--batch", "16",
                             "--micro-batch", "8", "--epochs", std::to_string(epochs), "--precision", "fp32",
                             "--dropout", "0.2", "--loader-threads", "1", "--checkpoint-steps", "1",
                             "--log-every", "1", "--seed", "3", "--quiet", "--run-dir", dir,
                             "--dist-timeout", "20", "--dist-startup-timeout", "30"};
  if (nproc > 1) {
    a.push_back("--nproc");
    a.push_back(std::to_string(nproc));
  }
  if (resume) a.push_back("--resume");
  return a;
}

// `args` with `flag`'s value replaced (or the flag appended).
inline std::vector<std::string> with(std::vector<std::string> args, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag) {
      args[i + 1] = value;
      return args;
    }
  args.push_back(flag);
  args.push_back(value);
  return args;
}

// Loads <dir>/weights.pt into a digits mini-F0.
inline models::Classifier weights_of(const std::string& dir) {
  auto m = digits_model();
  train::load_weights(dir + "/weights.pt", *m);
  return m;
}

// max |a - b| / (1 + max |b|) over all parameters.
inline double max_rel_diff(models::ClassifierImpl& a, models::ClassifierImpl& b) {
  double worst = 0;
  auto pa = a.named_parameters(true), pb = b.named_parameters(true);
  for (auto& item : pa) {
    const torch::Tensor& y = pb[item.key()];
    worst = std::max(worst, (item.value() - y).abs().max().item<double>() / (1.0 + y.abs().max().item<double>()));
  }
  return worst;
}

// The direct children of `pid` (the ranks of a --nproc launcher), from /proc.
inline std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  pid_t c;
  while (in >> c) out.push_back(c);
  return out;
}

// Train-metrics lines written so far in <dir>/metrics.jsonl.
inline size_t train_lines(const std::string& dir) {
  size_t n = 0;
  if (std::filesystem::exists(dir + "/metrics.jsonl"))
    for (auto& j : read_jsonl(dir + "/metrics.jsonl")) n += j["type"] == "train";
  return n;
}

}  // namespace nfscale::dist::testing
