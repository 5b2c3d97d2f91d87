// bootstrap.h - point estimates with percentile bootstrap intervals, and a generic case-resampling bootstrap
// driver (deterministic: resample r uses derive_seed(seed, {r})).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/points.h"

namespace nfscale::scaling {

struct BootstrapOptions {
  int resamples = 1000;  // 0 disables intervals
  uint64_t seed = 0;
  double level = 0.95;   // central percentile interval
};

// A fitted value and its bootstrap interval (lo/hi are NaN when the bootstrap was disabled or failed).
struct Estimate {
  double value = kMissing;
  double lo = kMissing;
  double hi = kMissing;
  bool contains(double v) const { return v >= lo && v <= hi; }
};
nlohmann::json to_json(const Estimate& e);
// "0.1234 [0.1100, 0.1300]" with %.4g formatting.
std::string format_estimate(const Estimate& e);

// Parameter samples of a bootstrap: samples[r] is the parameter vector of successful resample r.
struct BootstrapSamples {
  std::vector<std::vector<double>> samples;
  int requested = 0;
  int succeeded() const { return static_cast<int>(samples.size()); }
};

// Resamples indices 0..n-1 with replacement `resamples` times and calls `fit(indices)`; a fit that throws
// (a degenerate resample) is skipped. Returns the parameter vectors of the successful fits.
BootstrapSamples run_bootstrap(std::size_t n, const std::function<std::vector<double>(const std::vector<std::size_t>&)>& fit,
                               const BootstrapOptions& options);

// Percentile interval of values (NaNs ignored); {NaN, NaN} when fewer than 10 finite values.
std::pair<double, double> percentile_interval(std::vector<double> values, double level);

// Fills lo/hi of estimates[k] from column k of the samples (estimates.size() <= each sample's size).
void attach_intervals(std::vector<Estimate*> estimates, const BootstrapSamples& boot, double level);

}  // namespace nfscale::scaling
