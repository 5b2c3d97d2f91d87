// ticks.h - axis tick choice for plots: log axes (powers of ten, or 1-2-5 / 1..9 multiples on short spans) and
// linear axes (nice 1-2-5 steps), with short labels (1e13, 2e13, 0.5, 1.6).
#pragma once
#include <string>
#include <vector>

namespace nfscale::report {

struct Tick {
  double value = 0.0;
  std::string label;  // empty for a minor (unlabelled) tick
  bool major() const { return !label.empty(); }
};

// Ticks within [lo, hi] (0 < lo < hi) of a log axis. Labelled: the powers of ten if there are 4 or more (every
// n-th one when there would be more than 8); else the densest of the multiples 1..9, {1,2,3,4,6,8}, {1,2,3,5},
// {1,2,5}, {1,3} of the powers of ten that gives 4 (else 3) to 10 labels at least 1/9 of the span apart in log
// space; else the powers of ten, or linear_ticks when the span is too short for 3 labels. The unlabelled 1..9
// multiples are minor ticks (left out above 8 decades).
std::vector<Tick> log_ticks(double lo, double hi);
// "Nice" ticks within [lo, hi]: the step of 1, 2, 2.5 or 5 times a power of ten nearest to a sixth of the range
// (4 to 9 ticks).
std::vector<Tick> linear_ticks(double lo, double hi);
// Short tick label: 0.25, 1.6, 1000, 1e4, 2e13, 2.5e-4 (at most 4 significant digits; -0 prints as 0).
std::string format_tick(double v);
// True if v prints exactly as format_tick(v) (a "round" value that can serve as a tick label as is).
bool is_round_tick(double v);

}  // namespace nfscale::report
