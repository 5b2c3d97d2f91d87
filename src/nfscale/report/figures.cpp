// figures.cpp - builders of the scaling-study figures (titles, axes, styles, fit lines and bands, tick choices).
#include "nfscale/report/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void sort_by_x(std::vector<Point>& points) {
  std::stable_sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
}

// One series per curve, points sorted by x, markers joined by lines; y intervals as error bars.
std::vector<Series> curves_to_series(const std::vector<NamedCurve>& curves) {
  std::vector<Series> out;
  for (const auto& c : curves) {
    Series s;
    s.name = c.name;
    s.points = c.points;
    s.style.interval = IntervalStyle::ErrorBars;
    sort_by_x(s.points);
    out.push_back(std::move(s));
  }
  return out;
}

// The distinct values of x (or y) in the curves if there are 2..12 of them and all are round (else empty:
// automatic ticks).
std::vector<double> round_distinct_ticks(const std::vector<NamedCurve>& curves, bool x) {
  std::set<double> values;
  for (const auto& c : curves)
    for (const auto& p : c.points) {
      const double v = x ? p.x : p.y;
      if (v > 0.0 && std::isfinite(v)) values.insert(v);
    }
  if (values.size() < 2 || values.size() > 12) return {};
  if (!std::all_of(values.begin(), values.end(), is_round_tick)) return {};
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

void check_line(const PowerLawLine& line, const std::string& what) {
  require(line.x_min > 0.0 && line.x_max > line.x_min && std::isfinite(line.x_max),
          what + " '" + line.name + "': x range [" + std::to_string(line.x_min) + ", " + std::to_string(line.x_max) +
              "] must satisfy 0 < x_min < x_max");
  require(std::isfinite(line.coefficient) && std::isfinite(line.exponent),
          what + " '" + line.name + "': coefficient and exponent must be finite numbers");
}

double eval(const PowerLawLine& line, double x) { return line.coefficient * std::pow(x, line.exponent); }

// The fit as a dashed series: the two ends, or (with an interval) one point per interval x, carrying the band.
Series fit_series(const PowerLawLine& line, Rgb color, bool named) {
  Series fit;
  fit.name = named ? line.name : "";
  fit.style.markers = false;
  fit.style.dashed = true;
  fit.style.color = color;
  fit.style.line_width = 1.5;
  fit.style.interval = IntervalStyle::Band;
  if (line.interval.empty()) {
    for (double x : {line.x_min, line.x_max}) fit.points.push_back({x, eval(line, x)});
  } else {
    for (const auto& iv : line.interval) {
      fit.points.emplace_back(iv.x, eval(line, iv.x), iv.lo, iv.hi);
    }
    sort_by_x(fit.points);
  }
  return fit;
}

}  // namespace

std::string trial_tooltip(const std::string& model, double epochs, double lr, double loss, double compute,
                          const std::string& compute_unit) {
  std::string t = model + ", " + fmt("%.4g", epochs) + (epochs == 1.0 ? " epoch" : " epochs") + ", LR " +
                  fmt("%.4g", lr) + ": loss " + fmt("%.4f", loss);
  if (compute > 0) t += " at " + fmt("%.3g", compute) + " " + compute_unit;
  return t;
}

Plot loss_vs_compute_figure(const std::vector<NamedCurve>& per_model, const std::optional<PowerLawLine>& frontier,
                            const std::string& compute_unit) {
  Plot p = base_plot("Held-out loss vs pre-training compute", "pre-training compute (" + compute_unit + ")",
                     "held-out loss", per_model);
  if (frontier) {
    check_line(*frontier, "frontier fit line");
    p.series.push_back(fit_series(*frontier, Rgb{0, 0, 0}, true));
    p.annotation = fmt("fit: L = %.3g", frontier->coefficient) + fmt(" * C^%.3g", frontier->exponent);
    if (!frontier->interval.empty()) p.annotation += " (band: interval of the fit)";
  }
  return p;
}

Plot optimal_lr_figure(const std::vector<NamedCurve>& per_model) {
  Plot p = base_plot("Optimal learning rate vs epoch budget", "epoch budget", "optimal learning rate", per_model);
  p.x_ticks = round_distinct_ticks(per_model, true);
  p.y_ticks = round_distinct_ticks(per_model, false);
  p.x_range = padded(p.x_ticks);
  p.y_range = padded(p.y_ticks);
  return p;
}

Plot lr_slope_figure(const std::vector<LrSlopeCurve>& per_model) {
  Plot p;
  p.title = "Optimal learning rate vs epoch budget: fitted slopes";
  p.x_label = "epoch budget";
  p.y_label = "optimal learning rate";
  std::vector<NamedCurve> as_curves;
  for (size_t i = 0; i < per_model.size(); ++i) {
    const auto& m = per_model[i];
    as_curves.push_back({m.name, m.points});
    // The dots carry the hover titles; the legend lists the fit (dashed line with a dot) with its slope.
    Series data;
    data.name = m.name;
    data.points = m.points;
    sort_by_x(data.points);
    data.style.lines = false;
    data.style.color = palette_color(i);
    data.style.interval = IntervalStyle::ErrorBars;
    data.style.in_legend = !m.fit;
    if (!m.fit) data.name += ", no fit";
    p.series.push_back(std::move(data));
  }
  for (size_t i = 0; i < per_model.size(); ++i)
    if (per_model[i].fit) {
      check_line(*per_model[i].fit, "LR slope fit of " + per_model[i].name);
      Series fit = fit_series(*per_model[i].fit, palette_color(i), false);
      fit.name = per_model[i].name + fmt(", slope %.2f", per_model[i].fit->exponent);
      fit.style.legend_marker = true;
      p.series.push_back(std::move(fit));
    }
  p.x_ticks = round_distinct_ticks(as_curves, true);
  p.x_range = padded(p.x_ticks);
  return p;
}

Plot residual_figure(const std::vector<NamedCurve>& per_model, const PowerLawLine& fit,
                     const std::string& compute_unit) {
  check_line(fit, "residual plot fit");
  Plot p;
  p.title = "Residuals of the frontier fit";
  p.x_label = "pre-training compute (" + compute_unit + ")";
  p.y_label = "ln(loss / fit)";
  p.y_scale = Scale::Linear;
  p.annotation = fmt("fit: L = %.3g", fit.coefficient) + fmt(" * C^%.3g", fit.exponent);
  p.reference_y = {0.0};
  if (!fit.interval.empty()) {
    Series band;
    band.style.lines = band.style.markers = false;
    band.style.color = Rgb{0, 0, 0};
    band.style.band_opacity = 0.12;
    for (const auto& iv : fit.interval) {
      const double f = eval(fit, iv.x);
      if (!(iv.x > 0 && iv.lo > 0 && iv.hi > 0 && f > 0)) continue;
      band.points.emplace_back(iv.x, 0.0, std::log(iv.lo / f), std::log(iv.hi / f));
    }
    sort_by_x(band.points);
    band.name = "interval of the fit";
    p.series.push_back(std::move(band));
  }
  for (size_t i = 0; i < per_model.size(); ++i) {
    Series s;
    s.name = per_model[i].name;
    s.style.lines = false;
    s.style.color = palette_color(i);
    for (const auto& q : per_model[i].points) {
      const double f = eval(fit, q.x);
      if (!(q.x > 0 && q.y > 0 && f > 0 && std::isfinite(f))) continue;
      const double r = std::log(q.y / f);
      s.points.emplace_back(q.x, r, (q.tooltip.empty() ? per_model[i].name + fmt(" at %.3g", q.x) : q.tooltip) +
                                        fmt("; residual %+.4f", r));
    }
    sort_by_x(s.points);
    p.series.push_back(std::move(s));
  }
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

Plot family_frontiers_figure(const std::vector<FamilyFrontier>& families, const std::string& compute_unit) {
  require(!families.empty(), "family frontier figure: no family to draw");
  Plot p;
  p.title = "Held-out loss vs pre-training compute, by model family";
  p.x_label = "pre-training compute (" + compute_unit + ")";
  p.y_label = "held-out loss";
  std::string annotation;
  for (size_t i = 0; i < families.size(); ++i) {
    const auto& f = families[i];
    const Rgb color = palette_color(i);
    Series runs;
    runs.name = f.name + " runs";
    runs.points = f.runs;
    sort_by_x(runs.points);
    runs.style.lines = false;
    runs.style.color = color;
    runs.style.marker_radius = 2.2;
    runs.style.in_legend = false;
    p.series.push_back(std::move(runs));
    Series front;
    front.name = f.name + " frontier";
    front.points = f.frontier;
    sort_by_x(front.points);
    front.style.color = color;
    front.style.interval = IntervalStyle::ErrorBars;
    p.series.push_back(std::move(front));
    if (f.fit) {
      check_line(*f.fit, "frontier fit of family " + f.name);
      Series fit = fit_series(*f.fit, color, false);
      fit.name = f.name + fmt(" fit: L = %.3g", f.fit->coefficient) + fmt(" C^%.3f", f.fit->exponent);
      p.series.push_back(std::move(fit));
      if (!annotation.empty()) annotation += "; ";
      annotation += f.name + fmt(" b = %.3f", f.fit->exponent);
    }
  }
  if (!annotation.empty()) p.annotation = "frontier fits: " + annotation + " (bands: their bootstrap intervals)";
  return p;
}

Plot published_results_figure(const std::vector<NamedCurve>& per_family, const std::string& note) {
  Plot p = base_plot("Published results at paper scale (not measured here)", "pre-training compute (TPU-v4 core hours)",
                     "ImageNet top-1 accuracy (%)", per_family);
  p.y_scale = Scale::Linear;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (auto& s : p.series) {
    s.style.lines = false;
    s.style.marker_radius = 5.0;
    for (const auto& pt : s.points) {
      x_lo = std::min(x_lo, pt.x), x_hi = std::max(x_hi, pt.x);
      y_lo = std::min(y_lo, pt.y), y_hi = std::max(y_hi, pt.y);
    }
  }
  // A margin around the points, so that markers and their labels sit inside the frame (x on the log axis).
  if (x_lo > 0 && x_hi >= x_lo) p.x_range = std::make_pair(x_lo / 1.25, x_hi * 1.25);
  if (y_hi >= y_lo) {
    const double pad = std::max(0.1 * (y_hi - y_lo), 0.05);
    p.y_range = std::make_pair(y_lo - pad, y_hi + pad);
  }
  p.annotation = note;
  return p;
}

}  // namespace nfscale::report
