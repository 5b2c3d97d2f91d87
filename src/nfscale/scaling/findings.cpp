// findings.cpp - verdicts on the paper's four findings from the fits' intervals (see findings.h, docs/scaling.md).
#include "nfscale/scaling/findings.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include <boost/math/distributions/students_t.hpp>

#include "nfscale/scaling/text_format.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {
namespace {

bool has_interval(const Estimate& e) { return std::isfinite(e.lo) && std::isfinite(e.hi); }
std::string est(const Estimate& e) { return format_estimate(e); }

// Least squares of y on [1, x, x^2]; returns (c0, c1, c2). Needs >= 3 distinct x.
Eigen::Vector3d quadratic_fit(const std::vector<double>& x, const std::vector<double>& y) {
  Eigen::MatrixXd X(x.size(), 3);
  Eigen::VectorXd Y(y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    X(i, 0) = 1;
    X(i, 1) = x[i];
    X(i, 2) = x[i] * x[i];
    Y[i] = y[i];
  }
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(X);
  require(qr.rank() == 3, "curvature fit: fewer than 3 distinct compute values");
  return qr.solve(Y);
}


}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Reproduced: return "reproduced";
    case Verdict::NotReproduced: return "not reproduced";
    case Verdict::Inconclusive: return "inconclusive";
  }
  return "?";
}

// ---- (1) linearity -------------------------------------------------------------------------------------------

LinearityFinding linearity_finding(const FrontierFit& fr, const BootstrapOptions& bootstrap) {
  LinearityFinding f;
  f.points = static_cast<int>(fr.frontier.size());
  f.r2_log = fr.power.r2;
  double mx = 0;
  for (auto& p : fr.frontier) mx += std::log(p.flops) / fr.frontier.size();
  std::vector<double> x, y;
  for (auto& p : fr.frontier) {
    f.flops.push_back(p.flops);
    f.residuals.push_back(std::log(p.loss) - std::log(fr.power(p.flops)));
    x.push_back(std::log(p.flops) - mx);
    y.push_back(std::log(p.loss));
  }
  if (f.points < kLinearityMinPoints) {
    f.reason = fmt("only %d frontier points; the curvature test needs at least %d", f.points, kLinearityMinPoints);
    return f;
  }
  f.curvature.value = quadratic_fit(x, y)[2];
  BootstrapSamples boot = run_bootstrap_rng(
      [&](SplitMix& rng) {
        std::vector<double> bx, by;
        for (auto& p : resample_frontier(fr.seeds, rng)) {
          bx.push_back(std::log(p.flops) - mx);
          by.push_back(std::log(p.loss));
        }
        require(bx.size() >= static_cast<size_t>(kLinearityMinPoints), "too few points");
        return std::vector<double>{quadratic_fit(bx, by)[2]};
      },
      bootstrap);
  attach_intervals({&f.curvature}, boot, bootstrap.level);
  std::string nums = fmt("R^2(log) = %.4f, curvature c2 = %s (log L = c0 + c1 x + c2 x^2, x = centred log C)",
                         f.r2_log, est(f.curvature).c_str());
  if (!has_interval(f.curvature)) {
    f.reason = nums + "; no bootstrap interval for the curvature (bootstrap disabled or too few successful resamples)";
  } else if (!f.curvature.contains(0)) {
    f.verdict = Verdict::NotReproduced;
    f.reason = nums + fmt("; the curvature interval excludes 0: the frontier bends (%s) in log-log axes",
                          f.curvature.value > 0 ? "flattens, as with an irreducible loss E > 0" : "steepens");
  } else if (f.r2_log >= kLinearityMinR2) {
    f.verdict = Verdict::Reproduced;
    f.reason = nums + fmt("; R^2 >= %.2f and the curvature interval contains 0: a straight line", kLinearityMinR2);
  } else {
    f.reason = nums + fmt("; no detectable curvature but R^2 < %.2f: too much scatter to call it a line", kLinearityMinR2);
  }
  return f;
}

// ---- (2) growth ----------------------------------------------------------------------------------------------

GrowthFinding growth_finding(const ComputeOptimalFit& fit, double level) {
  GrowthFinding g;
  g.n_exponent = fit.n_exponent;
  g.epochs_exponent = fit.e_exponent;
  g.difference.value = fit.n_exponent.value - fit.e_exponent.value;
  std::vector<double> diff;
  for (auto& s : fit.samples.samples)
    if (s.size() > 5) diff.push_back(s[1] - s[5]);
  auto [lo, hi] = percentile_interval(diff, level);
  g.difference.lo = lo;
  g.difference.hi = hi;
  std::string nums = fmt("N_opt ~ C^%s, epochs_opt ~ C^%s, difference %s", est(g.n_exponent).c_str(),
                         est(g.epochs_exponent).c_str(), est(g.difference).c_str());
  if (!std::isfinite(fit.e_exponent.value)) {
    g.reason = "the frontier points have no epoch budgets, so the epochs exponent cannot be fitted";
  } else if (!has_interval(g.n_exponent) || !has_interval(g.epochs_exponent) || !has_interval(g.difference)) {
    g.reason = nums + "; no bootstrap intervals (bootstrap disabled or too few successful resamples)";
  } else if (g.n_exponent.hi <= 0 || g.epochs_exponent.hi <= 0) {
    g.verdict = Verdict::NotReproduced;
    g.reason = nums + fmt("; %s does not grow with compute (interval <= 0)",
                          g.n_exponent.hi <= 0 ? "the optimal model size" : "the optimal epoch budget");
  } else if (g.n_exponent.lo <= 0 || g.epochs_exponent.lo <= 0) {
    g.reason = nums + fmt("; the %s exponent's interval contains 0: growth not established",
                          g.n_exponent.lo <= 0 ? "N_opt" : "epochs");
  } else if (g.difference.contains(0)) {
    g.verdict = Verdict::Reproduced;
    g.reason = nums + "; both grow (intervals > 0) and the difference's interval contains 0: the same rate";
  } else {
    g.verdict = Verdict::NotReproduced;
    g.reason = nums + fmt("; both grow but the difference's interval excludes 0: %s grows faster",
                          g.difference.value > 0 ? "model size" : "the epoch budget");
  }
  return g;
}

// ---- (3) learning rate ---------------------------------------------------------------------------------------

LrFinding lr_finding(const std::vector<LrSlope>& slopes, const std::vector<BestLr>& best,
                     const BootstrapOptions& bootstrap) {
  LrFinding f;
  for (auto& s : slopes) {
    LrModelSlope m;
    m.model = s.model;
    m.params = s.params;
    m.slope = s.slope;
    double smallest = INFINITY;
    for (auto& b : best)
      if (b.model == s.model && b.epochs < smallest) {
        smallest = b.epochs;
        m.smallest_budget_lr = b.refined_lr;
      }
    f.models.push_back(m);
  }
  std::stable_sort(f.models.begin(), f.models.end(),
                   [](const LrModelSlope& a, const LrModelSlope& b) { return a.params < b.params; });
  std::vector<const LrModelSlope*> usable;
  double lr_min = INFINITY, lr_max = 0;
  for (auto& m : f.models) {
    if (has_interval(m.slope) && std::isfinite(m.params)) usable.push_back(&m);
    if (std::isfinite(m.smallest_budget_lr)) {
      lr_min = std::min(lr_min, m.smallest_budget_lr);
      lr_max = std::max(lr_max, m.smallest_budget_lr);
    }
  }
  if (lr_max > 0) f.small_budget_lr_ratio = lr_max / lr_min;
  if (usable.size() < 2) {
    f.reason = fmt("only %zu model(s) with an LR slope interval (needs >= %d budgets each, and params); at least 2 "
                   "models are needed to compare slopes across sizes",
                   usable.size(), kMinLrSlopeBudgets + 1);
    return f;
  }
  // Size trend: slope_m = c + d log N_m by least squares; interval by drawing each slope from a normal with the
  // half-width of its interval / z (a parametric bootstrap of the slopes).
  auto trend = [&](const std::vector<double>& s) {
    double mx = 0, my = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < usable.size(); ++i) {
      mx += std::log(usable[i]->params) / usable.size();
      my += s[i] / usable.size();
    }
    for (size_t i = 0; i < usable.size(); ++i) {
      double dx = std::log(usable[i]->params) - mx;
      sxx += dx * dx;
      sxy += dx * (s[i] - my);
    }
    require(sxx > 0, "LR finding: all models have the same size");
    return sxy / sxx;
  };
  std::vector<double> point;
  for (auto* m : usable) point.push_back(m->slope.value);
  bool distinct_sizes = false;
  for (auto* m : usable) distinct_sizes |= m->params != usable[0]->params;
  if (!distinct_sizes) {
    f.reason = "all models with LR slopes have the same parameter count; the size ordering cannot be tested";
    return f;
  }
  f.size_trend.value = trend(point);
  const double z = boost::math::quantile(boost::math::normal(), 0.5 + bootstrap.level / 2);
  BootstrapSamples boot = run_bootstrap_rng(
      [&](SplitMix& rng) {
        std::vector<double> s;
        for (auto* m : usable) s.push_back(m->slope.value + (m->slope.hi - m->slope.lo) / (2 * z) * normal_draw(rng));
        return std::vector<double>{trend(s)};
      },
      bootstrap);
  attach_intervals({&f.size_trend}, boot, bootstrap.level);

  std::string nums;
  for (auto& m : f.models) nums += fmt("%s slope %s; ", m.model.c_str(), est(m.slope).c_str());
  nums += fmt("d slope / d log N = %s; smallest-budget LRs within a factor %.3g", est(f.size_trend).c_str(),
              f.small_budget_lr_ratio);
  bool all_fall = true, any_rise = false;
  for (auto* m : usable) {
    all_fall &= m->slope.hi < 0;
    any_rise |= m->slope.lo > 0;
  }
  if (any_rise) {
    f.verdict = Verdict::NotReproduced;
    f.reason = nums + "; the optimal LR rises with the budget for at least one model (slope interval > 0)";
  } else if (has_interval(f.size_trend) && f.size_trend.lo > 0) {
    f.verdict = Verdict::NotReproduced;
    f.reason = nums + "; larger models' LRs fall more slowly (size trend interval > 0)";
  } else if (all_fall && has_interval(f.size_trend) && f.size_trend.hi < 0 && f.small_budget_lr_ratio <= kLrFlatRatio) {
    f.verdict = Verdict::Reproduced;
    f.reason = nums + "; every slope interval < 0, larger models fall faster (trend interval < 0) and the LRs agree "
                      "at the smallest budget";
  } else {
    std::string why;
    if (!all_fall) why += " a slope interval contains 0;";
    if (!has_interval(f.size_trend) || f.size_trend.hi >= 0) why += " the size trend interval contains 0;";
    if (!(f.small_budget_lr_ratio <= kLrFlatRatio)) why += fmt(" smallest-budget LRs differ by more than x%.3g;", kLrFlatRatio);
    if (!why.empty()) why.pop_back();
    f.reason = nums + ";" + why;
  }
  return f;
}

// ---- (4) fine-tuning -----------------------------------------------------------------------------------------

FinetuneFinding finetune_finding(const std::vector<FinetunePoint>& points) {
  FinetuneFinding f;
  for (size_t i = 0; i < points.size(); ++i) {
    const FinetunePoint& p = points[i];
    for (auto [v, name] : {std::pair{p.params, "params"}, std::pair{p.epochs, "epochs"}, std::pair{p.flops, "flops"},
                           std::pair{p.pretrain_loss, "pretrain_loss"}, std::pair{p.finetune_error, "finetune_error"}})
      require(std::isfinite(v) && v >= 0, fmt("fine-tuning finding: point #%zu (model %s) has %s = %g; it must be a "
                                              "finite non-negative number",
                                              i + 1, p.model.c_str(), name, v));
  }
  std::vector<FinetunePoint> sorted = points;
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.flops < b.flops; });
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j].flops <= sorted[i].flops * kFinetuneBudgetTolerance) ++j;
    if (j - i >= 2) {
      FinetuneBudget b;
      b.candidates = static_cast<int>(j - i);
      const FinetunePoint *pt = &sorted[i], *ft = &sorted[i];
      double logc = 0;
      for (size_t k = i; k < j; ++k) {
        logc += std::log(sorted[k].flops) / (j - i);
        if (sorted[k].pretrain_loss < pt->pretrain_loss) pt = &sorted[k];
        if (sorted[k].finetune_error < ft->finetune_error) ft = &sorted[k];
      }
      b.flops = std::exp(logc);
      b.pretrain_best = pt->model;
      b.finetune_best = ft->model;
      b.pretrain_best_params = pt->params;
      b.finetune_best_params = ft->params;
      b.pretrain_best_epochs = pt->epochs;
      b.finetune_best_epochs = ft->epochs;
      if (pt == ft)
        ++f.same;
      else if (ft->params > pt->params && ft->epochs < pt->epochs)
        ++f.larger_fewer;
      else
        ++f.other;
      f.budgets.push_back(b);
    }
    i = j;
  }
  const int n = static_cast<int>(f.budgets.size());
  std::string nums = fmt("%d compute budget(s) with >= 2 fine-tuned candidates: fine-tuning picks a larger model with "
                         "fewer epochs in %d, the same run in %d, another choice in %d",
                         n, f.larger_fewer, f.same, f.other);
  if (n < kFinetuneMinBudgets) {
    f.reason = nums + fmt(" (of %zu fine-tuned runs); at least %d budgets with >= 2 runs each (within x%.3g compute) "
                          "are needed",
                          points.size(), kFinetuneMinBudgets, kFinetuneBudgetTolerance);
  } else if (2 * f.larger_fewer > n && f.other == 0) {
    f.verdict = Verdict::Reproduced;
    f.reason = nums + "; a majority prefers larger models with fewer epochs and none another way";
  } else if (f.larger_fewer == 0) {
    f.verdict = Verdict::NotReproduced;
    f.reason = nums + "; fine-tuning never prefers a larger model with fewer epochs";
  } else {
    f.reason = nums + "; mixed";
  }
  return f;
}

// ---- all -----------------------------------------------------------------------------------------------------

Findings study_findings(const StudyFit& fit, const std::vector<FinetunePoint>& finetune) {
  Findings f;
  const BootstrapOptions& bo = fit.options.bootstrap;
  if (fit.frontier) {
    try {
      f.linearity = linearity_finding(*fit.frontier, bo);
    } catch (const UserError& e) {
      f.linearity_error = e.what();
    }
  } else {
    f.linearity_error = "no frontier fit: " + fit.frontier_error;
  }
  if (fit.compute_optimal)
    f.growth = growth_finding(*fit.compute_optimal, bo.level);
  else
    f.growth_error = "no compute-optimal fit: " + fit.compute_optimal_error;
  if (fit.best_lrs_error.empty()) {
    try {
      f.lr = lr_finding(fit.lr_slopes, fit.best_lrs, bo);
    } catch (const UserError& e) {
      f.lr_error = e.what();
    }
  } else {
    f.lr_error = "no learning-rate fits: " + fit.best_lrs_error;
  }
  try {
    f.finetune = finetune_finding(finetune);
  } catch (const UserError& e) {
    f.finetune_error = e.what();
  }
  // A finding that could not be computed is inconclusive, with the reason.
  if (!f.linearity_error.empty()) f.linearity.reason = f.linearity_error;
  if (!f.growth_error.empty()) f.growth.reason = f.growth_error;
  if (!f.lr_error.empty()) f.lr.reason = f.lr_error;
  if (!f.finetune_error.empty()) f.finetune.reason = f.finetune_error;
  return f;
}

// ---- JSON and text -------------------------------------------------------------------------------------------

nlohmann::json to_json(const LinearityFinding& f) {
  nlohmann::json res = nlohmann::json::array();
  for (size_t i = 0; i < f.flops.size(); ++i) res.push_back({{"flops", f.flops[i]}, {"residual_log", f.residuals[i]}});
  return {{"verdict", verdict_name(f.verdict)}, {"reason", f.reason}, {"r2_log", f.r2_log},
          {"curvature", to_json(f.curvature)}, {"points", f.points}, {"residuals", res},
          {"rule", "reproduced if R^2(log) >= 0.95 and the 95% interval of c2 in log L = c0 + c1 x + c2 x^2 contains 0"}};
}

nlohmann::json to_json(const GrowthFinding& f) {
  return {{"verdict", verdict_name(f.verdict)}, {"reason", f.reason}, {"n_opt_exponent", to_json(f.n_exponent)},
          {"epochs_opt_exponent", to_json(f.epochs_exponent)}, {"difference", to_json(f.difference)}};
}

nlohmann::json to_json(const LrFinding& f) {
  nlohmann::json models = nlohmann::json::array();
  for (auto& m : f.models)
    models.push_back({{"model", m.model}, {"params", finite_or_null(m.params)}, {"slope", to_json(m.slope)},
                      {"smallest_budget_lr", finite_or_null(m.smallest_budget_lr)}});
  return {{"verdict", verdict_name(f.verdict)}, {"reason", f.reason}, {"models", models},
          {"small_budget_lr_ratio", finite_or_null(f.small_budget_lr_ratio)}, {"size_trend", to_json(f.size_trend)}};
}

nlohmann::json to_json(const FinetuneFinding& f) {
  nlohmann::json budgets = nlohmann::json::array();
  for (auto& b : f.budgets)
    budgets.push_back({{"flops", b.flops}, {"candidates", b.candidates}, {"pretrain_best", b.pretrain_best},
                       {"finetune_best", b.finetune_best}, {"pretrain_best_params", b.pretrain_best_params},
                       {"finetune_best_params", b.finetune_best_params}, {"pretrain_best_epochs", b.pretrain_best_epochs},
                       {"finetune_best_epochs", b.finetune_best_epochs}});
  return {{"verdict", verdict_name(f.verdict)}, {"reason", f.reason}, {"budgets", budgets},
          {"larger_fewer", f.larger_fewer}, {"same", f.same}, {"other", f.other}};
}

nlohmann::json to_json(const Findings& f) {
  return {{"loglog_linearity", to_json(f.linearity)},
          {"same_growth_rate", to_json(f.growth)},
          {"lr_vs_epochs", to_json(f.lr)},
          {"finetune_prefers_larger", to_json(f.finetune)}};
}

std::string format_findings(const Findings& f) {
  std::string o = "Findings of the paper, verdicts from the intervals\n";
  auto line = [&](const char* name, Verdict v, const std::string& reason) {
    o += fmt("  %-44s %-15s\n      %s\n", name, verdict_name(v), reason.c_str());
  };
  line("(1) frontier is a straight line in log-log", f.linearity.verdict, f.linearity.reason);
  line("(2) N_opt and epochs grow at the same rate", f.growth.verdict, f.growth.reason);
  line("(3) optimal LR falls with epochs, faster when larger", f.lr.verdict, f.lr.reason);
  line("(4) fine-tuning prefers larger models, fewer epochs", f.finetune.verdict, f.finetune.reason);
  return o;
}

}  // namespace nfscale::scaling
