// family_comparison.cpp - two families' frontier power laws compared at common compute levels (see the header).
#include "nfscale/scaling/family_comparison.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nfscale/scaling/fits.h"
#include "nfscale/scaling/text_format.h"
#include "nfscale/util/error.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {
namespace {


// The family's best frontier cell with compute <= flops (the frontier is sorted by compute and its loss falls
// along it, so that is the last one at or below flops). Its top-1 error: the mean over the runs of that cell.
BestByCompute best_by(const FamilySide& side, double flops) {
  BestByCompute b;
  const RunPoint* best = nullptr;
  for (const auto& p : side.fit->frontier)
    if (p.flops <= flops * (1 + 1e-9)) best = &p;
  if (!best) return b;
  b.model = best->model;
  b.epochs = best->epochs;
  b.lr = best->lr;
  b.flops = best->flops;
  b.loss = best->loss;
  double sum = 0;
  int n = 0;
  for (const auto& p : side.points)
    if (p.model == best->model && p.epochs == best->epochs && p.lr == best->lr && p.flops == best->flops &&
        std::isfinite(p.top1_err)) {
      sum += p.top1_err;
      ++n;
    }
  b.top1_err = n > 0 ? sum / n : kMissing;
  return b;
}

// Percentile interval of f(replicate k of a, replicate k of b) over the paired replicates, with `value` from the
// point fits.
template <class F>
Estimate paired(const FrontierFit& a, const FrontierFit& b, double value, F f) {
  Estimate e;
  e.value = value;
  const size_t n = std::min(a.power_samples.samples.size(), b.power_samples.samples.size());
  std::vector<double> v;
  v.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    const double x = f(a.power_samples.samples[k], b.power_samples.samples[k]);
    if (std::isfinite(x)) v.push_back(x);
  }
  if (v.size() < 2) return e;  // no interval: lo/hi stay NaN
  auto [lo, hi] = percentile_interval(std::move(v), a.level);
  e.lo = lo;
  e.hi = hi;
  return e;
}

std::string pct(double log_ratio) { return fmt("%.0f%%", 100 * (1 - std::exp(-std::fabs(log_ratio)))); }

// "from 1.1e+11 to 2.2e+12 FLOPs" or "at 3.4e+11 FLOPs".
std::string range_text(double lo, double hi) {
  if (lo == hi) return "at " + fmt("%.2g", lo) + " FLOPs";
  return "from " + fmt("%.2g", lo) + " to " + fmt("%.2g", hi) + " FLOPs";
}

std::string verdict_text(const FamilyComparison& c) {
  std::ostringstream out;
  out << "At equal pre-training compute " << range_text(c.overlap_lo, c.overlap_hi)
      << " (the range both frontiers cover), by the 95% intervals of the fitted loss ratio: ";
  // Runs of consecutive levels with the same leader.
  for (size_t i = 0; i < c.levels.size();) {
    size_t j = i;
    while (j + 1 < c.levels.size() && c.levels[j + 1].leader == c.levels[i].leader) ++j;
    const int leader = c.levels[i].leader;
    if (i > 0) out << "; ";
    const std::string where = range_text(c.levels[i].flops, c.levels[j].flops);
    if (leader == 0) {
      out << "indistinguishable " << where;
    } else {
      double lo = INFINITY, hi = 0;
      for (size_t k = i; k <= j; ++k) {
        lo = std::min(lo, std::fabs(c.levels[k].log_ratio.value));
        hi = std::max(hi, std::fabs(c.levels[k].log_ratio.value));
      }
      out << (leader < 0 ? c.family_a : c.family_b) << " is ahead " << where << " (held-out loss " << pct(lo)
          << (pct(lo) == pct(hi) ? "" : " to " + pct(hi)) << " lower)";
    }
    i = j + 1;
  }
  out << ".";
  const Estimate& d = c.exponent_diff;
  if (std::isfinite(d.lo) && std::isfinite(d.hi)) {
    out << " Exponents: " << c.family_a << " " << fmt("%.3f", c.exponent_a.value) << ", " << c.family_b << " "
        << fmt("%.3f", c.exponent_b.value) << "; difference " << fmt("%.3f", d.value) << " ["
        << fmt("%.3f", d.lo) << ", " << fmt("%.3f", d.hi) << "]: ";
    if (d.hi < 0) out << c.family_a << "'s loss falls faster with compute.";
    else if (d.lo > 0) out << c.family_b << "'s loss falls faster with compute.";
    else out << "the slopes are indistinguishable.";
  }
  return out.str();
}

}  // namespace

FamilyComparison compare_families(const FamilySide& a, const FamilySide& b, int levels) {
  require(a.fit && b.fit, "compare_families: both families need a frontier fit");
  require(levels >= 2, "compare_families: at least 2 compute levels");
  FamilyComparison c;
  c.family_a = a.family;
  c.family_b = b.family;
  const FrontierFit& fa = *a.fit;
  const FrontierFit& fb = *b.fit;
  c.exponent_a = fa.power_b;
  c.exponent_b = fb.power_b;
  c.exponent_diff = paired(fa, fb, fa.power.b - fb.power.b,
                           [](const std::vector<double>& sa, const std::vector<double>& sb) { return sa[1] - sb[1]; });
  c.overlap_lo = std::max(fa.min_flops, fb.min_flops);
  c.overlap_hi = std::min(fa.max_flops, fb.max_flops);
  if (!(c.overlap_lo <= c.overlap_hi)) {
    c.error = "the frontiers do not overlap in compute (" + a.family + ": " + fmt("%.2g", fa.min_flops) + " to " +
              fmt("%.2g", fa.max_flops) + " FLOPs, " + b.family + ": " + fmt("%.2g", fb.min_flops) + " to " +
              fmt("%.2g", fb.max_flops) + "); train the smaller family longer or the larger one shorter";
    c.verdict = "Not compared at equal compute: " + c.error + ".";
    return c;
  }
  const int n = c.overlap_lo == c.overlap_hi ? 1 : levels;
  for (int i = 0; i < n; ++i) {
    ComparisonLevel l;
    l.flops = n == 1 ? c.overlap_lo : c.overlap_lo * std::pow(c.overlap_hi / c.overlap_lo, double(i) / (n - 1));
    const double C = l.flops;
    l.fitted_a = fa.predict_power(C);
    l.fitted_b = fb.predict_power(C);
    l.best_a = best_by(a, C);
    l.best_b = best_by(b, C);
    l.log_ratio = paired(fa, fb, std::log(fa.power(C) / fb.power(C)),
                         [C](const std::vector<double>& sa, const std::vector<double>& sb) {
                           // log(a_a C^b_a / (a_b C^b_b)), computed in logs (C^b is tiny at 1e12 FLOPs)
                           return std::log(sa[0]) - std::log(sb[0]) + (sa[1] - sb[1]) * std::log(C);
                         });
    if (l.log_ratio.hi < 0) l.leader = -1;
    else if (l.log_ratio.lo > 0) l.leader = 1;
    c.levels.push_back(l);
  }
  c.verdict = verdict_text(c);
  return c;
}

nlohmann::json to_json(const FamilyComparison& c) {
  nlohmann::json levels = nlohmann::json::array();
  auto best = [](const BestByCompute& b) {
    return nlohmann::json{{"model", b.model},
                          {"epochs", finite_or_null(b.epochs)},
                          {"lr", finite_or_null(b.lr)},
                          {"flops", finite_or_null(b.flops)},
                          {"loss", finite_or_null(b.loss)},
                          {"top1_err", finite_or_null(b.top1_err)}};
  };
  for (const auto& l : c.levels)
    levels.push_back({{"flops", l.flops},
                      {"fitted_a", to_json(l.fitted_a)},
                      {"fitted_b", to_json(l.fitted_b)},
                      {"best_a", best(l.best_a)},
                      {"best_b", best(l.best_b)},
                      {"log_ratio", to_json(l.log_ratio)},
                      {"leader", l.leader < 0 ? c.family_a : l.leader > 0 ? c.family_b : "indistinguishable"}});
  return {{"family_a", c.family_a},          {"family_b", c.family_b},
          {"overlap_flops", {finite_or_null(c.overlap_lo), finite_or_null(c.overlap_hi)}},
          {"levels", levels},                {"exponent_a", to_json(c.exponent_a)},
          {"exponent_b", to_json(c.exponent_b)}, {"exponent_diff", to_json(c.exponent_diff)},
          {"error", c.error},                {"verdict", c.verdict}};
}

std::string format_comparison(const FamilyComparison& c) {
  std::ostringstream out;
  out << c.family_a << " against " << c.family_b << " at equal compute\n";
  if (!c.levels.empty()) {
    out << fmt("  %-10s  %-26s  %-26s  %-22s  %s\n", "FLOPs", (c.family_a + " fit [95%]").c_str(),
               (c.family_b + " fit [95%]").c_str(), "ln(L_a/L_b) [95%]", "best reached (loss, top-1 err)");
    for (const auto& l : c.levels) {
      auto est = [](const Estimate& e) { return fmt("%.4f [%.4f, %.4f]", e.value, e.lo, e.hi); };
      auto best = [](const BestByCompute& b) {
        if (b.model.empty()) return std::string("-");
        return b.model + fmt(" %g ep %.4f", b.epochs, b.loss) +
               (std::isfinite(b.top1_err) ? fmt(" %.2f%%", 100 * b.top1_err) : std::string());
      };
      out << fmt("  %-10.3g  %-26s  %-26s  %-22s  %s | %s\n", l.flops, est(l.fitted_a).c_str(),
                 est(l.fitted_b).c_str(), fmt("%+.3f [%+.3f, %+.3f]", l.log_ratio.value, l.log_ratio.lo,
                                              l.log_ratio.hi).c_str(),
                 best(l.best_a).c_str(), best(l.best_b).c_str());
    }
  }
  out << "  exponent b: " << c.family_a << " " << format_estimate(c.exponent_a) << ", " << c.family_b << " "
      << format_estimate(c.exponent_b) << ", difference " << format_estimate(c.exponent_diff) << "\n";
  out << "  " << c.verdict << "\n";
  return out.str();
}

}  // namespace nfscale::scaling
