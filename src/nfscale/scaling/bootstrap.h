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

namespace nfscale {
class SplitMix;
}

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
  // The point estimate sits on a bound of its parameter space (e.g. an offset E collapsed to 0): the value is not
  // identified by the data and no interval is reported (lo/hi are NaN; `bound_note` says which bound).
  bool at_bound = false;
  std::string bound_note;
  bool contains(double v) const { return v >= lo && v <= hi; }
  // Marks the estimate as at a bound and drops its interval.
  void flag_bound(const std::string& note);
};
nlohmann::json to_json(const Estimate& e);
// "0.1234 [0.1100, 0.1300]" with %.4g formatting; "0 (at bound: <note>; no interval)" when at a bound.
std::string format_estimate(const Estimate& e);

// Parameter samples of a bootstrap: samples[r] is the parameter vector of successful resample r.
struct BootstrapSamples {
  std::vector<std::vector<double>> samples;
  int requested = 0;
  int succeeded() const { return static_cast<int>(samples.size()); }
};

// Generic driver: calls `fit(rng)` `resamples` times, resample r with SplitMix(derive_seed(seed, {r})); `fit`
// draws whatever it resamples (indices, seed noise) from `rng`. A fit that throws UserError or returns a
// non-finite value is skipped.
BootstrapSamples run_bootstrap_rng(const std::function<std::vector<double>(SplitMix& rng)>& fit,
                                   const BootstrapOptions& options);

// n indices drawn from 0..n-1 with replacement.
std::vector<std::size_t> resample_indices(std::size_t n, SplitMix& rng);

// Resamples indices 0..n-1 with replacement `resamples` times and calls `fit(indices)`; a fit that throws
// (a degenerate resample) is skipped. Returns the parameter vectors of the successful fits.
BootstrapSamples run_bootstrap(std::size_t n, const std::function<std::vector<double>(const std::vector<std::size_t>&)>& fit,
                               const BootstrapOptions& options);

// Percentile interval of values (NaNs ignored); {NaN, NaN} when fewer than 10 finite values.
std::pair<double, double> percentile_interval(std::vector<double> values, double level);

// Fills lo/hi of estimates[k] from column k of the samples (estimates.size() <= each sample's size).
void attach_intervals(std::vector<Estimate*> estimates, const BootstrapSamples& boot, double level);

}  // namespace nfscale::scaling
