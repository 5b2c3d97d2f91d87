// fits.cpp - learning-rate, frontier and compute-optimal fits, and fit_study / to_json / format_study_fit
// (see fits.h and docs/scaling.md).
#include "nfscale/scaling/fits.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include <boost/math/distributions/students_t.hpp>

#include "nfscale/scaling/text_format.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {
namespace {


// Vertex (in x) of the parabola through three points, clamped to [x0, x2].
double parabola_vertex(double x0, double f0, double x1, double f1, double x2, double f2) {
  double num_ = (x1 - x0) * (x1 - x0) * (f1 - f2) - (x1 - x2) * (x1 - x2) * (f1 - f0);
  double den = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0);
  if (den == 0 || !std::isfinite(num_ / den)) return x1;
  return std::clamp(x1 - 0.5 * num_ / den, x0, x2);
}

Estimate predict(const BootstrapSamples& boot, double level, double value,
                 const std::function<double(const std::vector<double>&)>& curve) {
  Estimate e;
  e.value = value;
  std::vector<double> v;
  for (auto& s : boot.samples) v.push_back(curve(s));
  auto [lo, hi] = percentile_interval(std::move(v), level);
  e.lo = lo;
  e.hi = hi;
  return e;
}

// predict() for one new run: each curve value times the seed noise of one run (seeds.h), from a fixed stream so
// the same fit always gives the same interval.
Estimate predict_run(const BootstrapSamples& boot, double level, double value, const SeedCells& seeds,
                     const std::function<double(const std::vector<double>&)>& curve) {
  if (!seeds.has_noise()) return predict(boot, level, value, curve);
  SplitMix rng(0x9e3779b97f4a7c15ULL);
  return predict(boot, level, value, [&](const std::vector<double>& s) {
    const double sigma = draw_seed_sigma(seeds, rng);
    return curve(s) * std::exp(sigma * normal_draw(rng));
  });
}

void split_flops_loss(const std::vector<RunPoint>& pts, std::vector<double>& c, std::vector<double>& l) {
  for (auto& p : pts) {
    c.push_back(p.flops);
    l.push_back(p.loss);
  }
}

}  // namespace

BootstrapSamples drop_columns(const BootstrapSamples& boot, size_t first) {
  BootstrapSamples out;
  out.requested = boot.requested;
  for (auto& s : boot.samples) out.samples.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(first), s.end());
  return out;
}

std::vector<RunPoint> resample_frontier(const SeedCells& cells, SplitMix& rng) {
  std::vector<RunPoint> front = extract_frontier(draw_seed_noise(cells, rng));
  if (cells.has_noise()) return front;
  std::vector<RunPoint> out;
  for (size_t i : resample_indices(front.size(), rng)) out.push_back(front[i]);
  return out;
}

// ---- learning rate -------------------------------------------------------------------------------------------

std::vector<BestLr> fit_best_lrs(const std::vector<RunPoint>& points) {
  const std::string what = "best-learning-rate fit";
  require(!points.empty(), what + ": no points; it needs runs with columns model, epochs, lr, loss");
  require_fields(points, {Field::Epochs, Field::Lr, Field::Loss}, what);
  // (model, epochs) -> lr -> (sum loss, count)
  std::map<std::pair<std::string, double>, std::map<double, std::pair<double, int>>> groups;
  std::map<std::string, double> params;
  for (size_t i = 0; i < points.size(); ++i) {
    const RunPoint& p = points[i];
    require(!p.model.empty(), what + ": " + describe_point(p, i) + " has no model name (nor params to derive one)");
    auto& cell = groups[{p.model, p.epochs}][p.lr];
    cell.first += p.loss;
    cell.second += 1;
    if (std::isfinite(p.params)) params[p.model] = p.params;
  }
  std::vector<BestLr> out;
  for (auto& [key, by_lr] : groups) {
    std::vector<double> lrs, losses;
    int runs = 0;
    for (auto& [lr, acc] : by_lr) {
      lrs.push_back(lr);
      losses.push_back(acc.first / acc.second);
      runs += acc.second;
    }
    size_t k = std::min_element(losses.begin(), losses.end()) - losses.begin();
    BestLr b;
    b.model = key.first;
    b.epochs = key.second;
    b.params = params.count(b.model) ? params[b.model] : kMissing;
    b.lr = lrs[k];
    b.loss = losses[k];
    b.grid_size = static_cast<int>(lrs.size());
    b.runs = runs;
    if (k > 0) b.lr_below = lrs[k - 1];
    if (k + 1 < lrs.size()) b.lr_above = lrs[k + 1];
    b.interior = k > 0 && k + 1 < lrs.size();
    b.refined_lr = b.interior ? std::exp(parabola_vertex(std::log(lrs[k - 1]), losses[k - 1], std::log(lrs[k]),
                                                         losses[k], std::log(lrs[k + 1]), losses[k + 1]))
                              : b.lr;
    out.push_back(b);
  }
  return out;
}

std::vector<LrSlope> fit_lr_slopes(const std::vector<BestLr>& best,
                                   std::vector<std::pair<std::string, std::string>>* skipped, double level) {
  std::map<std::string, std::vector<const BestLr*>> by_model;
  for (auto& b : best) by_model[b.model].push_back(&b);
  std::vector<LrSlope> out;
  for (auto& [model, rows] : by_model) {
    if (static_cast<int>(rows.size()) < kMinLrSlopeBudgets) {
      if (skipped)
        skipped->emplace_back(model, fmt("only %d epoch budget(s); the LR-vs-epochs slope needs at least %d",
                                         static_cast<int>(rows.size()), kMinLrSlopeBudgets));
      continue;
    }
    std::vector<double> x, y;
    LrSlope s;
    s.model = model;
    s.params = rows[0]->params;
    s.min_epochs = INFINITY;
    s.max_epochs = 0;
    for (auto* r : rows) {
      s.edge_optima += r->interior ? 0 : 1;
      s.min_epochs = std::min(s.min_epochs, r->epochs);
      s.max_epochs = std::max(s.max_epochs, r->epochs);
    }
    // An optimum at the grid edge only bounds the true optimum; leave those out when enough bracketed ones remain.
    s.edge_excluded = static_cast<int>(rows.size()) - s.edge_optima >= kMinLrSlopeBudgets && s.edge_optima > 0;
    for (auto* r : rows) {
      if (s.edge_excluded && !r->interior) continue;
      x.push_back(r->epochs);
      y.push_back(r->refined_lr);
    }
    s.law = fit_power_law(x, y, "LR-vs-epochs fit of model " + model);
    s.slope.value = s.law.b;
    if (x.size() >= 3) {  // OLS standard error of the slope in log-log space, Student t with n - 2 dof
      double mx = 0, sxx = 0, ssr = 0;
      for (double v : x) mx += std::log(v) / x.size();
      for (size_t i = 0; i < x.size(); ++i) {
        double dx = std::log(x[i]) - mx;
        sxx += dx * dx;
        double r = std::log(y[i]) - std::log(s.law(x[i]));
        ssr += r * r;
      }
      const double dof = static_cast<double>(x.size()) - 2;
      const double se = std::sqrt(ssr / dof / sxx);
      const double t = boost::math::quantile(boost::math::students_t(dof), 0.5 + level / 2);
      s.slope.lo = s.law.b - t * se;
      s.slope.hi = s.law.b + t * se;
    }
    // Optima at the LR grid's edge only bound the optimum: a slope through them has no honest interval.
    const int edge_used = s.edge_excluded ? 0 : s.edge_optima;
    if (edge_used > 0)
      s.slope.flag_bound(fmt("%d of %d best LRs at the LR grid edge; extend the grid", edge_used,
                             static_cast<int>(rows.size())));
    s.budgets = static_cast<int>(rows.size());
    out.push_back(s);
  }
  return out;
}

// ---- frontier ------------------------------------------------------------------------------------------------

std::vector<RunPoint> extract_frontier(const std::vector<RunPoint>& points) {
  require_fields(points, {Field::Flops, Field::Loss}, "frontier fit");
  std::vector<RunPoint> sorted = points;
  std::stable_sort(sorted.begin(), sorted.end(), [](const RunPoint& a, const RunPoint& b) {
    return a.flops < b.flops || (a.flops == b.flops && a.loss < b.loss);
  });
  std::vector<RunPoint> out;
  double best = INFINITY;
  for (auto& p : sorted) {
    if (p.loss < best && (out.empty() || out.back().flops != p.flops)) {
      out.push_back(p);
      best = p.loss;
    }
  }
  return out;
}

Estimate FrontierFit::predict_power(double flops) const {
  return predict(power_samples, level, power(flops),
                 [&](const std::vector<double>& s) { return s[0] * std::pow(flops, s[1]); });
}

Estimate FrontierFit::predict_offset(double flops) const {
  if (!offset) return {};
  return predict(offset_samples, level, (*offset)(flops),
                 [&](const std::vector<double>& s) { return s[0] + s[1] * std::pow(flops, s[2]); });
}

Estimate FrontierFit::predict_run_power(double flops) const {
  return predict_run(power_samples, level, power(flops), seeds,
                     [&](const std::vector<double>& s) { return s[0] * std::pow(flops, s[1]); });
}

Estimate FrontierFit::predict_run_offset(double flops) const {
  if (!offset) return {};
  return predict_run(offset_samples, level, (*offset)(flops), seeds,
                     [&](const std::vector<double>& s) { return s[0] + s[1] * std::pow(flops, s[2]); });
}

FrontierFit fit_frontier(const std::vector<RunPoint>& points, const BootstrapOptions& bootstrap) {
  const std::string what = "frontier fit";
  FrontierFit f;
  require_fields(points, {Field::Flops, Field::Loss}, what);
  f.seeds = aggregate_seeds(points);
  f.frontier = extract_frontier(f.seeds.cells);
  f.level = bootstrap.level;
  require(static_cast<int>(f.frontier.size()) >= kMinPowerLawPoints,
          what + ": only " + std::to_string(f.frontier.size()) + " point(s) on the compute frontier (of " +
              std::to_string(points.size()) + " runs); it needs at least " + std::to_string(kMinPowerLawPoints) +
              " runs at different compute that each improve on all cheaper runs");
  std::vector<double> C, L;
  split_flops_loss(f.frontier, C, L);
  f.min_flops = C.front();
  f.max_flops = C.back();
  f.power = fit_power_law(C, L, what);
  f.power_a.value = f.power.a;
  f.power_b.value = f.power.b;
  f.power_samples = run_bootstrap_rng(
      [&](SplitMix& rng) {
        std::vector<double> c, l;
        split_flops_loss(resample_frontier(f.seeds, rng), c, l);
        PowerLaw p = fit_power_law(c, l, what);
        return std::vector<double>{p.a, p.b};
      },
      bootstrap);
  attach_intervals({&f.power_a, &f.power_b}, f.power_samples, bootstrap.level);
  try {
    f.offset = fit_offset_power_law(C, L, what + " (L = E + a C^b)");
    f.offset_E.value = f.offset->E;
    f.offset_a.value = f.offset->a;
    f.offset_b.value = f.offset->b;
    f.offset_samples = run_bootstrap_rng(
        [&](SplitMix& rng) {
          std::vector<double> c, l;
          split_flops_loss(resample_frontier(f.seeds, rng), c, l);
          OffsetPowerLaw p = fit_offset_power_law(c, l, what);
          return std::vector<double>{p.E, p.a, p.b};
        },
        bootstrap);
    attach_intervals({&f.offset_E, &f.offset_a, &f.offset_b}, f.offset_samples, bootstrap.level);
    if (f.offset->E_at_bound)
      f.offset_E.flag_bound(f.offset->E <= 0.5 * L.back() ? "E = 0, the lower bound" : "E = min L, the upper bound");
  } catch (const UserError& e) {
    f.offset.reset();
    f.offset_error = e.what();
  }
  return f;
}

// ---- compute-optimal -----------------------------------------------------------------------------------------

ComputeOptimalFit fit_compute_optimal(const std::vector<RunPoint>& points, const BootstrapOptions& bootstrap) {
  const std::string what = "compute-optimal fit";
  require_fields(points, {Field::Flops, Field::Loss}, what);
  SeedCells cells = aggregate_seeds(points);
  std::vector<RunPoint> front = extract_frontier(cells.cells);
  require_fields(front, {Field::Params, Field::Examples}, what);
  std::set<double> sizes;
  for (auto& p : front) sizes.insert(p.params);
  require(sizes.size() >= 2, what + ": the compute frontier holds a single model size (" +
                                 (front.empty() ? std::string("none") : front[0].model) +
                                 "); N_opt(C) needs frontier points from at least 2 model sizes - train more models");
  require(static_cast<int>(front.size()) >= kMinPowerLawPoints,
          what + ": only " + std::to_string(front.size()) + " frontier points; it needs at least " +
              std::to_string(kMinPowerLawPoints));
  bool has_epochs = true;
  for (auto& p : cells.cells) has_epochs &= std::isfinite(p.epochs) && p.epochs > 0;
  auto split = [](const std::vector<RunPoint>& pts, std::vector<double>& c, std::vector<double>& n,
                  std::vector<double>& d, std::vector<double>& e) {
    for (auto& p : pts) {
      c.push_back(p.flops);
      n.push_back(p.params);
      d.push_back(p.examples);
      e.push_back(p.epochs);
    }
  };
  std::vector<double> C, N, D, Ep;
  split(front, C, N, D, Ep);
  ComputeOptimalFit f;
  f.n = static_cast<int>(front.size());
  f.distinct_models = static_cast<int>(sizes.size());
  f.min_flops = C.front();
  f.max_flops = C.back();
  f.n_law = fit_power_law(C, N, what + " (N_opt)");
  f.d_law = fit_power_law(C, D, what + " (D_opt)");
  f.n_coeff.value = f.n_law.a;
  f.n_exponent.value = f.n_law.b;
  f.d_coeff.value = f.d_law.a;
  f.d_exponent.value = f.d_law.b;
  if (has_epochs) {
    f.e_law = fit_power_law(C, Ep, what + " (epochs_opt)");
    f.e_coeff.value = f.e_law.a;
    f.e_exponent.value = f.e_law.b;
  }
  f.samples = run_bootstrap_rng(
      [&](SplitMix& rng) {
        std::vector<double> c, n, d, e;
        split(resample_frontier(cells, rng), c, n, d, e);
        PowerLaw pn = fit_power_law(c, n, what), pd = fit_power_law(c, d, what);
        std::vector<double> row{pn.a, pn.b, pd.a, pd.b};
        if (has_epochs) {
          PowerLaw pe = fit_power_law(c, e, what);
          row.push_back(pe.a);
          row.push_back(pe.b);
        }
        return row;
      },
      bootstrap);
  attach_intervals({&f.n_coeff, &f.n_exponent, &f.d_coeff, &f.d_exponent}, f.samples, bootstrap.level);
  if (has_epochs) attach_intervals({&f.e_coeff, &f.e_exponent}, drop_columns(f.samples, 4), bootstrap.level);
  return f;
}

// ---- study ---------------------------------------------------------------------------------------------------

StudyFit fit_study(const std::vector<RunPoint>& points, const FitOptions& options) {
  require(!points.empty(), "fit: no run points were given; pass a CSV with at least a few finished runs");
  StudyFit s;
  s.n_points = static_cast<int>(points.size());
  s.options = options;
  try {
    s.best_lrs = fit_best_lrs(points);
    s.lr_slopes = fit_lr_slopes(s.best_lrs, &s.lr_slopes_skipped, options.bootstrap.level);
  } catch (const UserError& e) {
    s.best_lrs_error = e.what();
  }
  try {
    s.frontier = fit_frontier(points, options.bootstrap);
  } catch (const UserError& e) {
    s.frontier_error = e.what();
  }
  try {
    s.compute_optimal = fit_compute_optimal(points, options.bootstrap);
  } catch (const UserError& e) {
    s.compute_optimal_error = e.what();
  }
  if (options.fit_chinchilla) {
    try {
      s.chinchilla = fit_chinchilla(points, options.chinchilla, options.bootstrap);
    } catch (const UserError& e) {
      s.chinchilla_error = e.what();
    }
  } else {
    s.chinchilla_error = "disabled by option";
  }
  return s;
}

// ---- JSON ----------------------------------------------------------------------------------------------------

nlohmann::json to_json(const BestLr& b) {
  return {{"model", b.model},       {"params", finite_or_null(b.params)},     {"epochs", b.epochs},
          {"lr", b.lr},             {"loss", b.loss},              {"lr_below", finite_or_null(b.lr_below)},
          {"lr_above", finite_or_null(b.lr_above)}, {"interior", b.interior}, {"refined_lr", b.refined_lr},
          {"grid_size", b.grid_size}, {"runs", b.runs}};
}

nlohmann::json to_json(const LrSlope& s) {
  return {{"model", s.model}, {"params", finite_or_null(s.params)}, {"coefficient", s.law.a}, {"slope", s.law.b},
          {"slope_interval", to_json(s.slope)},
          {"r2_log", s.law.r2}, {"budgets", s.budgets}, {"edge_optima", s.edge_optima}, {"edge_excluded", s.edge_excluded},
          {"min_epochs", s.min_epochs}, {"max_epochs", s.max_epochs}};
}

nlohmann::json to_json(const FrontierFit& f) {
  nlohmann::json pts = nlohmann::json::array();
  for (auto& p : f.frontier) pts.push_back(to_json(p));
  nlohmann::json j = {
      {"points", pts},
      {"min_flops", f.min_flops},
      {"max_flops", f.max_flops},
      {"power_law", {{"a", to_json(f.power_a)}, {"b", to_json(f.power_b)}, {"r2_log", f.power.r2}, {"n", f.power.n},
                     {"bootstrap", {{"requested", f.power_samples.requested}, {"succeeded", f.power_samples.succeeded()}}}}},
      {"level", f.level},
      {"seed_noise", to_json(f.seeds)}};
  if (f.offset)
    j["offset_power_law"] = {{"E", to_json(f.offset_E)}, {"a", to_json(f.offset_a)}, {"b", to_json(f.offset_b)},
                             {"r2_log", f.offset->r2}, {"E_at_bound", f.offset->E_at_bound},
                             {"bootstrap", {{"requested", f.offset_samples.requested},
                                            {"succeeded", f.offset_samples.succeeded()}}}};
  else
    j["offset_power_law"] = {{"error", f.offset_error}};
  return j;
}

nlohmann::json to_json(const ComputeOptimalFit& f) {
  return {{"n_opt", {{"coefficient", to_json(f.n_coeff)}, {"exponent", to_json(f.n_exponent)}, {"r2_log", f.n_law.r2}}},
          {"d_opt", {{"coefficient", to_json(f.d_coeff)}, {"exponent", to_json(f.d_exponent)}, {"r2_log", f.d_law.r2}}},
          {"epochs_opt", {{"coefficient", to_json(f.e_coeff)}, {"exponent", to_json(f.e_exponent)}, {"r2_log", f.e_law.r2}}},
          {"n", f.n},
          {"distinct_models", f.distinct_models},
          {"min_flops", f.min_flops},
          {"max_flops", f.max_flops},
          {"bootstrap", {{"requested", f.samples.requested}, {"succeeded", f.samples.succeeded()}}}};
}

nlohmann::json to_json(const StudyFit& s) {
  nlohmann::json j;
  j["n_points"] = s.n_points;
  j["bootstrap"] = {{"resamples", s.options.bootstrap.resamples}, {"seed", s.options.bootstrap.seed},
                    {"level", s.options.bootstrap.level}};
  auto part = [](bool ok, const nlohmann::json& value, const std::string& error) {
    return ok ? value : nlohmann::json{{"error", error}};
  };
  nlohmann::json lrs = nlohmann::json::array(), slopes = nlohmann::json::array(), skipped = nlohmann::json::array();
  for (auto& b : s.best_lrs) lrs.push_back(to_json(b));
  for (auto& l : s.lr_slopes) slopes.push_back(to_json(l));
  for (auto& [m, why] : s.lr_slopes_skipped) skipped.push_back({{"model", m}, {"reason", why}});
  j["best_lrs"] = part(s.best_lrs_error.empty(), lrs, s.best_lrs_error);
  j["lr_slopes"] = part(s.best_lrs_error.empty(), nlohmann::json{{"fits", slopes}, {"skipped", skipped}},
                        s.best_lrs_error);
  j["frontier"] = part(s.frontier.has_value(), s.frontier ? to_json(*s.frontier) : nlohmann::json(), s.frontier_error);
  j["compute_optimal"] = part(s.compute_optimal.has_value(),
                              s.compute_optimal ? to_json(*s.compute_optimal) : nlohmann::json(), s.compute_optimal_error);
  j["chinchilla"] = part(s.chinchilla.has_value(), s.chinchilla ? to_json(*s.chinchilla) : nlohmann::json(),
                         s.chinchilla_error);
  return j;
}

// ---- text ----------------------------------------------------------------------------------------------------

std::string format_study_fit(const StudyFit& s) {
  std::string o;
  const int level = static_cast<int>(std::lround(s.options.bootstrap.level * 100));
  o += fmt("Scaling study: %d run points; intervals are %d%% bootstrap percentiles (%d resamples, seed %llu)\n\n",
           s.n_points, level, s.options.bootstrap.resamples,
           static_cast<unsigned long long>(s.options.bootstrap.seed));

  o += "Best learning rate per (model, epochs)\n";
  if (!s.best_lrs_error.empty()) {
    o += "  not available: " + s.best_lrs_error + "\n";
  } else {
    o += fmt("  %-16s %9s %10s %10s %10s %10s %10s %-9s\n", "model", "epochs", "best_lr", "loss", "lr_below",
             "lr_above", "refined", "optimum");
    for (auto& b : s.best_lrs)
      o += fmt("  %-16s %9.4g %10.4g %10.5g %10.4g %10.4g %10.4g %-9s\n", b.model.c_str(), b.epochs, b.lr, b.loss,
               b.lr_below, b.lr_above, b.refined_lr, b.interior ? "interior" : "edge");
    o += "\nOptimal LR vs epochs per model (lr_opt = c * epochs^slope)\n";
    o += fmt("  %-16s %10s %-32s %8s %8s %6s\n", "model", "c", "slope [t interval]", "R2(log)", "budgets", "edge");
    for (auto& l : s.lr_slopes)
      o += fmt("  %-16s %10.4g %-32s %8.4f %8d %6d%s\n", l.model.c_str(), l.law.a, format_estimate(l.slope).c_str(), l.law.r2, l.budgets,
               l.edge_optima, l.edge_excluded ? " (edge optima left out of the fit)" : "");
    for (auto& [m, why] : s.lr_slopes_skipped) o += fmt("  %-16s skipped: %s\n", m.c_str(), why.c_str());
  }

  o += "\nCompute frontier (lowest loss at each compute; L vs training FLOPs C)\n";
  if (!s.frontier) {
    o += "  not available: " + s.frontier_error + "\n";
  } else {
    const FrontierFit& f = *s.frontier;
    o += fmt("  %zu frontier points, C in [%.3g, %.3g] FLOPs\n", f.frontier.size(), f.min_flops, f.max_flops);
    o += "  " + describe_seed_noise(f.seeds) + "\n";
    o += fmt("  %-16s %12s %9s %10s\n", "model", "flops", "epochs", "loss");
    for (auto& p : f.frontier)
      o += fmt("  %-16s %12.4g %9.4g %10.5g\n", p.model.c_str(), p.flops, p.epochs, p.loss);
    o += fmt("  L = a * C^b          a = %s  b = %s  R2(log) = %.4f\n", format_estimate(f.power_a).c_str(),
             format_estimate(f.power_b).c_str(), f.power.r2);
    if (f.offset)
      o += fmt("  L = E + a * C^b      E = %s  a = %s  b = %s  R2(log) = %.4f%s\n", format_estimate(f.offset_E).c_str(),
               format_estimate(f.offset_a).c_str(), format_estimate(f.offset_b).c_str(), f.offset->r2,
               "");
    else
      o += "  L = E + a * C^b      not available: " + f.offset_error + "\n";
  }

  o += "\nCompute-optimal allocation (frontier points regressed on C)\n";
  if (!s.compute_optimal) {
    o += "  not available: " + s.compute_optimal_error + "\n";
  } else {
    const ComputeOptimalFit& c = *s.compute_optimal;
    o += fmt("  N_opt = k * C^a      a = %s  R2(log) = %.4f\n", format_estimate(c.n_exponent).c_str(), c.n_law.r2);
    o += fmt("  D_opt = k * C^b      b = %s  R2(log) = %.4f\n", format_estimate(c.d_exponent).c_str(), c.d_law.r2);
    if (std::isfinite(c.e_exponent.value))
      o += fmt("  epochs_opt = k * C^e e = %s  R2(log) = %.4f\n", format_estimate(c.e_exponent).c_str(), c.e_law.r2);
    o += fmt("  (%d frontier points, %d model sizes)\n", c.n, c.distinct_models);
  }

  o += "\nChinchilla Approach 3: L(N, D) = E + A/N^alpha + B/D^beta (Huber on log L)\n";
  if (!s.chinchilla) {
    o += "  not available: " + s.chinchilla_error + "\n";
  } else {
    const ChinchillaFit& c = *s.chinchilla;
    o += fmt("  E = %s  A = %s  B = %s\n", format_estimate(c.E).c_str(), format_estimate(c.A).c_str(),
             format_estimate(c.B).c_str());
    o += fmt("  alpha = %s  beta = %s  R2(log) = %.4f\n", format_estimate(c.alpha).c_str(),
             format_estimate(c.beta).c_str(), c.r2_log);
    o += fmt("  implied N_opt ~ C^%s, D_opt ~ C^%s (assumes C proportional to N*D)\n",
             format_estimate(c.a_exponent).c_str(), format_estimate(c.b_exponent).c_str());
  }
  return o;
}

}  // namespace nfscale::scaling
