// figures.cpp - builders of the scaling-study figures (titles, axes, styles, fit line, tick choices).
#include "nfscale/report/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

// One series per curve, points sorted by x, markers joined by lines.
std::vector<Series> curves_to_series(const std::vector<NamedCurve>& curves) {
  std::vector<Series> out;
  for (const auto& c : curves) {
    Series s;
    s.name = c.name;
    s.points = c.points;
    std::sort(s.points.begin(), s.points.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
    out.push_back(std::move(s));
  }
  return out;
}

// The distinct values of x (or y) in the curves, if there are 2..12 of them (else empty: automatic ticks).
std::vector<double> distinct_ticks(const std::vector<NamedCurve>& curves, bool x) {
  std::set<double> values;
  for (const auto& c : curves)
    for (const auto& p : c.points) {
      const double v = x ? p.x : p.y;
      if (v > 0.0 && std::isfinite(v)) values.insert(v);
    }
  if (values.size() < 2 || values.size() > 12) return {};
  return {values.begin(), values.end()};
}

// A log-log plot with the given texts, one series per curve.
Plot base_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
               const std::vector<NamedCurve>& curves) {
  Plot p;
  p.title = title;
  p.x_label = x_label;
  p.y_label = y_label;
  p.series = curves_to_series(curves);
  return p;
}

// Range covering the ticks with the same 5% log-space padding the automatic ranges use.
std::optional<std::pair<double, double>> padded(const std::vector<double>& ticks) {
  if (ticks.size() < 2) return std::nullopt;
  const double llo = std::log10(ticks.front()), lhi = std::log10(ticks.back()), pad = 0.05 * (lhi - llo);
  return std::make_pair(std::pow(10.0, llo - pad), std::pow(10.0, lhi + pad));
}

}  // namespace

Plot loss_vs_compute_figure(const std::vector<NamedCurve>& per_model, const std::optional<PowerLawLine>& frontier,
                            const std::string& compute_unit) {
  Plot p = base_plot("Held-out loss vs pre-training compute", "pre-training compute (" + compute_unit + ")",
                     "held-out loss", per_model);
  if (frontier) {
    require(frontier->x_min > 0.0 && frontier->x_max > frontier->x_min,
            "frontier fit line: x range [" + std::to_string(frontier->x_min) + ", " +
                std::to_string(frontier->x_max) + "] must satisfy 0 < x_min < x_max");
    Series fit;
    fit.name = frontier->name;
    fit.style.markers = false;
    fit.style.dashed = true;
    fit.style.color = Rgb{0, 0, 0};
    fit.style.line_width = 1.5;
    for (double x : {frontier->x_min, frontier->x_max})
      fit.points.push_back({x, frontier->coefficient * std::pow(x, frontier->exponent)});
    p.series.push_back(fit);
    char buf[96];
    std::snprintf(buf, sizeof buf, "fit: L = %.3g * C^%.3g", frontier->coefficient, frontier->exponent);
    p.annotation = buf;
  }
  return p;
}

Plot optimal_lr_figure(const std::vector<NamedCurve>& per_model) {
  Plot p = base_plot("Optimal learning rate vs epoch budget", "epoch budget", "optimal learning rate", per_model);
  p.x_ticks = distinct_ticks(per_model, true);
  p.y_ticks = distinct_ticks(per_model, false);
  p.x_range = padded(p.x_ticks);
  p.y_range = padded(p.y_ticks);
  return p;
}

Plot finetune_error_figure(const std::vector<NamedCurve>& per_model, const std::vector<NamedCurve>& references,
                           const std::string& compute_unit) {
  Plot p = base_plot("Fine-tuned top-1 error vs pre-training compute", "pre-training compute (" + compute_unit + ")",
                     "top-1 error", per_model);
  for (auto s : curves_to_series(references)) {
    s.style.lines = false;
    s.style.marker_radius = 5.0;
    p.series.push_back(std::move(s));
  }
  return p;
}

}  // namespace nfscale::report
