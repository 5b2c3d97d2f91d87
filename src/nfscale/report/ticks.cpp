// ticks.cpp - tick values and labels of log and linear plot axes.
#include "nfscale/report/ticks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

constexpr double kRel = 1e-9;  // relative tolerance for "on the boundary" and "same value"

// m * 10^k for every m in `mults` and every k, within [lo, hi], ascending.
std::vector<double> multiples(double lo, double hi, const std::vector<int>& mults) {
  const int kmin = static_cast<int>(std::floor(std::log10(lo))) - 1;
  const int kmax = static_cast<int>(std::ceil(std::log10(hi))) + 1;
  std::vector<double> out;
  for (int k = kmin; k <= kmax; ++k)
    for (int m : mults) {
      // Exact decimal values (2e-4, not 2 * 1.0000000000000001e-4) so labels and round-trips are clean.
      char buf[32];
      std::snprintf(buf, sizeof buf, "%de%d", m, k);
      const double v = std::strtod(buf, nullptr);
      if (v >= lo * (1 - kRel) && v <= hi * (1 + kRel)) out.push_back(v);
    }
  std::sort(out.begin(), out.end());
  return out;
}

// Smallest distance between neighbours in log10 space.
double min_log_gap(const std::vector<double>& v) {
  double g = INFINITY;
  for (size_t i = 1; i < v.size(); ++i) g = std::min(g, std::log10(v[i] / v[i - 1]));
  return g;
}

}  // namespace

std::string format_tick(double v) {
  if (v == 0.0 || std::abs(v) < 1e-300) return "0";
  char buf[48];
  const double a = std::abs(v);
  if (a >= 1e-3 && a < 1e4) {
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
  }
  int e = static_cast<int>(std::floor(std::log10(a)));
  double m = v / std::pow(10.0, e);
  if (std::abs(m) >= 9.9995) {  // 9.99996e4 rounds to 10e4
    m /= 10.0;
    ++e;
  }
  std::snprintf(buf, sizeof buf, "%.4ge%d", m, e);
  return buf;
}

bool is_round_tick(double v) {
  if (!std::isfinite(v)) return false;
  const double back = std::strtod(format_tick(v).c_str(), nullptr);
  return std::abs(back - v) <= kRel * std::abs(v);
}

std::vector<Tick> linear_ticks(double lo, double hi) {
  require(hi > lo && std::isfinite(lo) && std::isfinite(hi),
          "linear axis range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] must satisfy lo < hi");
  // The step of 1, 2, 2.5 or 5 times a power of ten nearest (in log space) to a sixth of the range; neighbouring
  // steps differ by at most 2x, so there are 4 to 9 ticks.
  const double raw = (hi - lo) / 6.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {2.0, 2.5, 5.0, 10.0})
    if (std::abs(std::log(m * mag / raw)) < std::abs(std::log(step / raw)) - kRel) step = m * mag;
  std::vector<Tick> ticks;
  for (double i = std::ceil(lo / step - kRel); i * step <= hi + kRel * step; i += 1.0) {
    double v = i * step;
    if (std::abs(v) < kRel * step) v = 0.0;
    // Snap to the shortest decimal (0.6, not 0.6000000000000001) so the value equals its label.
    v = std::strtod(format_tick(v).c_str(), nullptr);
    ticks.push_back({v, format_tick(v)});
  }
  return ticks;
}

std::vector<Tick> log_ticks(double lo, double hi) {
  require(lo > 0.0 && hi > lo && std::isfinite(hi), "log axis range [" + std::to_string(lo) + ", " +
                                                        std::to_string(hi) + "] must satisfy 0 < lo < hi");
  const double span = std::log10(hi / lo);
  // Densest first; a level is taken if its labels are at least 1/9 of the span apart and at most 10. A first pass
  // wants 4 labels, a second settles for 3.
  static const std::vector<std::vector<int>> kLevels = {
      {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 6, 8}, {1, 2, 3, 5}, {1, 2, 5}, {1, 3}};
  std::vector<double> labelled = multiples(lo, hi, {1});
  if (labelled.size() < 4) {  // short span: a denser level of multiples, if one fits
    bool found = false;
    for (size_t want : {size_t{4}, size_t{3}}) {
      for (const auto& level : kLevels) {
        std::vector<double> candidate = multiples(lo, hi, level);
        if (candidate.size() >= want && candidate.size() <= 10 &&
            min_log_gap(candidate) >= span / 9.0 * (1 - kRel)) {
          labelled = std::move(candidate);
          found = true;
          break;
        }
      }
      if (found) break;
    }
    if (!found && labelled.size() < 3 && span < 1.5) return linear_ticks(lo, hi);  // too short for log labels
  } else if (labelled.size() > 8) {  // many decades: label every n-th power of ten
    const long stride = static_cast<long>((labelled.size() + 7) / 8);
    std::vector<double> kept;
    for (double v : labelled)
      if (std::lround(std::log10(v)) % stride == 0) kept.push_back(v);
    labelled = kept;
  }
  std::vector<Tick> ticks;
  for (double v : labelled) ticks.push_back({v, format_tick(v)});
  if (span <= 8.0)
    for (double v : multiples(lo, hi, {1, 2, 3, 4, 5, 6, 7, 8, 9}))
      if (!std::any_of(labelled.begin(), labelled.end(), [&](double l) { return std::abs(l - v) <= kRel * v; }))
        ticks.push_back({v, ""});
  std::sort(ticks.begin(), ticks.end(), [](const Tick& a, const Tick& b) { return a.value < b.value; });
  return ticks;
}

}  // namespace nfscale::report
