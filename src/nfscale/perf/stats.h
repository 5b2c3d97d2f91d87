// stats.h - summary statistics and machine facts for benchmarks: median and [min..max] of repeated timings, the
// load average, the process's peak RSS.
#pragma once
#include <string>
#include <vector>

namespace nfscale::perf {

// Median, minimum and maximum of a series (all 0 for an empty one).
struct Spread {
  double median = 0.0, min = 0.0, max = 0.0;
};
Spread spread(const std::vector<double>& values);
double median(std::vector<double> values);

// 1, 5 and 15 minute load averages as "0.52 0.61 0.70" ("?" when unavailable); the first one as a number.
std::string load_string();
double load_1min();

// Peak resident set size of this process so far, in kB.
long maxrss_kb();

}  // namespace nfscale::perf
