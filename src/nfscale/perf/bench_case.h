// bench_case.h - what one benchmark case is: a model at a resolution and batch (parsed from MODEL:RES:BATCH), and
// the settings nfscale's step can run in (autocast precision x memory format) that the bench chooses among.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nfscale::perf {

struct BenchCase {
  std::string model;
  int64_t res = 0, batch = 0;
};

// "mini-F3:32:128" -> {mini-F3, 32, 128}. UserError naming the flag and the expected form on a malformed string,
// an unknown model, a resolution the model cannot take, or a batch < 1.
BenchCase parse_case(const std::string& text);

// How nfscale runs a step: autocast precision and input/activation memory format (the trainer's --precision and
// --channels-last).
struct StepSetting {
  bool bf16 = false, channels_last = true;
  std::string str() const;  // "fp32/nchw", "bf16/channels_last", ...
};

// The settings `precision` allows: "best" all four; "fp32" / "bf16" that precision in both layouts; a full
// setting name ("fp32/channels_last", ...) that one. UserError on anything else.
std::vector<StepSetting> candidate_settings(const std::string& precision);

}  // namespace nfscale::perf
