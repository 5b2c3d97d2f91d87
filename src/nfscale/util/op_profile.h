// op_profile.h - per-operator CPU time of a piece of code, from LibTorch's (legacy) profiler: calls, self time and
// total time per op name, for `nfscale bench --profile` (find where a training step's time goes).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace nfscale {

struct OpStat {
  std::string name;
  int64_t calls = 0;
  double self_us = 0.0;   // time inside the op minus time in ops it called
  double total_us = 0.0;  // time inside the op, children included
};

// Runs fn once with the CPU profiler on; returns one row per op name, by self time (largest first). With
// by_shapes, one row per op name, input shapes and outermost enclosing op ("aten::copy_ [32,64,8,8] [32,64,8,8] in
// aten::conv2d"): which call of a many-called op costs the time.
std::vector<OpStat> profile_ops(const std::function<void()>& fn, bool by_shapes = false);

// A text table of the first `rows` rows, with each row's share of the summed self time.
std::string format_op_table(const std::vector<OpStat>& stats, size_t rows);

}  // namespace nfscale
