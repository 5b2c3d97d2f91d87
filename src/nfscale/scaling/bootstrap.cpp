// bootstrap.cpp - case-resampling bootstrap driver and percentile intervals (see bootstrap.h).
#include "nfscale/scaling/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {

void Estimate::flag_bound(const std::string& note) {
  at_bound = true;
  bound_note = note;
  lo = hi = kMissing;
}

nlohmann::json to_json(const Estimate& e) {
  nlohmann::json j = {{"value", finite_or_null(e.value)}, {"lo", finite_or_null(e.lo)}, {"hi", finite_or_null(e.hi)}};
  if (e.at_bound) {
    j["at_bound"] = true;
    j["bound_note"] = e.bound_note;
  }
  return j;
}

std::string format_estimate(const Estimate& e) {
  char buf[256];
  if (e.at_bound)
    std::snprintf(buf, sizeof buf, "%.4g (at bound: %s; no interval)", e.value, e.bound_note.c_str());
  else if (std::isfinite(e.lo) && std::isfinite(e.hi))
    std::snprintf(buf, sizeof buf, "%.4g [%.4g, %.4g]", e.value, e.lo, e.hi);
  else
    std::snprintf(buf, sizeof buf, "%.4g", e.value);
  return buf;
}

std::vector<std::size_t> resample_indices(std::size_t n, SplitMix& rng) {
  std::vector<std::size_t> idx(n);
  for (auto& i : idx) i = rng.below(n);
  return idx;
}

BootstrapSamples run_bootstrap(std::size_t n, const std::function<std::vector<double>(const std::vector<std::size_t>&)>& fit,
                               const BootstrapOptions& options) {
  return run_bootstrap_rng([&](SplitMix& rng) { return fit(resample_indices(n, rng)); }, options);
}

BootstrapSamples run_bootstrap_rng(const std::function<std::vector<double>(SplitMix& rng)>& fit,
                                   const BootstrapOptions& options) {
  require(options.resamples >= 0, "bootstrap resamples must be >= 0, got " + std::to_string(options.resamples));
  require(options.level > 0 && options.level < 1,
          "bootstrap level must be in (0, 1), got " + std::to_string(options.level) + "; use 0.95");
  BootstrapSamples out;
  out.requested = options.resamples;
  for (int r = 0; r < options.resamples; ++r) {
    SplitMix rng(derive_seed(options.seed, {static_cast<uint64_t>(r)}));
    try {
      std::vector<double> params = fit(rng);
      bool finite = std::all_of(params.begin(), params.end(), [](double v) { return std::isfinite(v); });
      if (finite) out.samples.push_back(std::move(params));
    } catch (const UserError&) {
      // degenerate resample (e.g. all copies of one point): skipped, reflected in succeeded()
    }
  }
  return out;
}

std::pair<double, double> percentile_interval(std::vector<double> v, double level) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.size() < 10) return {kMissing, kMissing};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {  // linear interpolation between order statistics
    double pos = q * (v.size() - 1);
    size_t lo = static_cast<size_t>(std::floor(pos));
    size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
  };
  double tail = (1 - level) / 2;
  return {at(tail), at(1 - tail)};
}

void attach_intervals(std::vector<Estimate*> estimates, const BootstrapSamples& boot, double level) {
  for (size_t k = 0; k < estimates.size(); ++k) {
    if (estimates[k]->at_bound) continue;  // not identified: no interval
    std::vector<double> col;
    col.reserve(boot.samples.size());
    for (auto& s : boot.samples) col.push_back(s.at(k));
    auto [lo, hi] = percentile_interval(std::move(col), level);
    estimates[k]->lo = lo;
    estimates[k]->hi = hi;
  }
}

}  // namespace nfscale::scaling
