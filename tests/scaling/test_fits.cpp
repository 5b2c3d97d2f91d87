// test_fits.cpp - power-law, frontier, compute-optimal and learning-rate fits recover known synthetic parameters;
// bootstrap intervals contain the truth; degenerate input fails with clear UserErrors; fit_study degrades gracefully.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/scaling/fits.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::scaling {
namespace {

// Standard normal via Box-Muller from the project's counter-based generator.
double normal(SplitMix& r) {
  double u1 = std::max(r.uniform(), 1e-300), u2 = r.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

std::vector<double> logspace(double lo, double hi, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(lo * std::pow(hi / lo, i / double(n - 1)));
  return v;
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

TEST(PowerLaw, ExactDataRecoveredExactly) {
  auto C = logspace(1e15, 1e21, 8);
  std::vector<double> L;
  for (double c : C) L.push_back(30.0 * std::pow(c, -0.07));
  PowerLaw p = fit_power_law(C, L, "test");
  EXPECT_NEAR(p.b, -0.07, 1e-12);
  EXPECT_NEAR(p.a / 30.0, 1.0, 1e-9);
  EXPECT_NEAR(p.r2, 1.0, 1e-12);
}

TEST(PowerLaw, OffsetLawExactDataRecovered) {
  auto C = logspace(1e15, 1e21, 10);
  std::vector<double> L;
  for (double c : C) L.push_back(1.5 + 40.0 * std::pow(c, -0.1));
  OffsetPowerLaw p = fit_offset_power_law(C, L, "test");
  EXPECT_NEAR(p.E, 1.5, 1e-4);
  EXPECT_NEAR(p.b, -0.1, 1e-4);
  EXPECT_NEAR(p.a / 40.0, 1.0, 1e-3);
  EXPECT_GT(p.r2, 0.999999);
  EXPECT_FALSE(p.E_at_bound);
}

TEST(PowerLaw, OffsetLawOnPurePowerLawPutsEAtZero) {
  auto C = logspace(1e15, 1e21, 8);
  std::vector<double> L;
  for (double c : C) L.push_back(30.0 * std::pow(c, -0.07));
  OffsetPowerLaw p = fit_offset_power_law(C, L, "test");
  EXPECT_NEAR(p.E, 0.0, 1e-3);
  EXPECT_NEAR(p.b, -0.07, 1e-3);
}

TEST(PowerLaw, TooFewOrDegeneratePointsThrow) {
  try {
    fit_power_law({1e18, 2e18}, {2.0, 1.9}, "frontier fit");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "frontier fit") && contains(e.what(), "at least 3")) << e.what();
  }
  EXPECT_THROW(fit_power_law({1e18, 1e18, 1e18}, {2.0, 1.9, 1.8}, "t"), UserError);
  EXPECT_THROW(fit_power_law({1e18, 2e18, 3e18}, {2.0, NAN, 1.8}, "t"), UserError);
  EXPECT_THROW(fit_offset_power_law({1e18, 2e18, 3e18}, {2.0, 1.9, 1.8}, "t"), UserError);  // needs 4
}

// Frontier points with L = E + a C^b and 1% multiplicative noise, plus dominated runs above the frontier.
std::vector<RunPoint> noisy_frontier_study(double E, double a, double b, double noise, uint64_t seed) {
  SplitMix rng(seed);
  std::vector<RunPoint> pts;
  for (double c : logspace(1e16, 1e22, 16)) {
    RunPoint p;
    p.model = "M";
    p.flops = c;
    p.loss = (E + a * std::pow(c, b)) * std::exp(noise * normal(rng));
    pts.push_back(p);
    RunPoint worse = p;  // same compute, clearly worse (e.g. a bad LR): must not enter the frontier
    worse.loss *= 1.3;
    pts.push_back(worse);
  }
  return pts;
}

TEST(Frontier, ExtractKeepsOnlyImprovingPoints) {
  std::vector<RunPoint> pts;
  auto add = [&](double c, double l) {
    RunPoint p;
    p.flops = c;
    p.loss = l;
    pts.push_back(p);
  };
  add(4e18, 2.0);
  add(1e18, 3.0);
  add(2e18, 3.5);  // worse than a cheaper point: dropped
  add(2e18, 2.5);  // kept (ties in compute keep the lowest loss)
  add(8e18, 2.1);  // dropped
  add(16e18, 1.5);
  auto f = extract_frontier(pts);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_DOUBLE_EQ(f[0].flops, 1e18);
  EXPECT_DOUBLE_EQ(f[1].loss, 2.5);
  EXPECT_DOUBLE_EQ(f[2].flops, 4e18);
  EXPECT_DOUBLE_EQ(f[3].flops, 16e18);
}

TEST(Frontier, PowerLawWithNoiseRecoveredAndIntervalsContainTruth) {
  // Pure power law L = 25 C^-0.06 with 1% noise: most raw points improve on cheaper ones.
  auto pts = noisy_frontier_study(0.0, 25.0, -0.06, 0.01, 7);
  BootstrapOptions bo;
  bo.resamples = 400;
  bo.seed = 1;
  FrontierFit f = fit_frontier(pts, bo);
  EXPECT_GE(f.frontier.size(), 8u);
  EXPECT_NEAR(f.power.b, -0.06, 0.004);
  EXPECT_GT(f.power.r2, 0.95);
  EXPECT_TRUE(f.power_b.contains(-0.06)) << format_estimate(f.power_b);
  EXPECT_LT(f.power_b.lo, f.power_b.value);
  EXPECT_GT(f.power_b.hi, f.power_b.value);
  EXPECT_GT(f.power_samples.succeeded(), 390);
  // Interval on the fitted curve at a point inside the range contains the true curve.
  Estimate at = f.predict_power(1e19);
  EXPECT_TRUE(at.contains(25.0 * std::pow(1e19, -0.06))) << format_estimate(at);
}

TEST(Frontier, OffsetPowerLawWithNoiseRecovered) {
  auto pts = noisy_frontier_study(1.5, 40.0, -0.1, 0.002, 11);
  BootstrapOptions bo;
  bo.resamples = 300;
  FrontierFit f = fit_frontier(pts, bo);
  ASSERT_TRUE(f.offset.has_value()) << f.offset_error;
  EXPECT_NEAR(f.offset->E, 1.5, 0.15);
  EXPECT_NEAR(f.offset->b, -0.1, 0.02);
  EXPECT_TRUE(f.offset_E.contains(1.5)) << format_estimate(f.offset_E);
  EXPECT_TRUE(f.offset_b.contains(-0.1)) << format_estimate(f.offset_b);
  // The pure power law fits curved data worse than the offset law in log space.
  EXPECT_GT(f.offset->r2, f.power.r2);
}

TEST(Frontier, BootstrapIsDeterministicForAFixedSeed) {
  auto pts = noisy_frontier_study(0.0, 25.0, -0.06, 0.01, 3);
  BootstrapOptions bo;
  bo.resamples = 100;
  bo.seed = 42;
  FrontierFit a = fit_frontier(pts, bo), b = fit_frontier(pts, bo);
  EXPECT_EQ(a.power_b.lo, b.power_b.lo);
  EXPECT_EQ(a.power_b.hi, b.power_b.hi);
  bo.seed = 43;
  FrontierFit c = fit_frontier(pts, bo);
  EXPECT_NE(a.power_b.lo, c.power_b.lo);
}

TEST(Frontier, DegenerateInputThrowsNamingTheProblem) {
  std::vector<RunPoint> pts(2);
  pts[0].flops = 1e18;
  pts[0].loss = 2;
  pts[1].flops = 2e18;
  pts[1].loss = 1.9;
  try {
    fit_frontier(pts);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "at least 3")) << e.what();
  }
  pts.push_back(pts[1]);
  pts[2].flops = 4e18;
  pts[2].loss = NAN;
  pts[2].origin = "runs.csv line 4";
  try {
    fit_frontier(pts);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "runs.csv line 4") && contains(e.what(), "loss")) << e.what();
  }
  pts[2].loss = 1.8;
  pts[2].flops = -1;
  EXPECT_THROW(fit_frontier(pts), UserError);
}

// A study whose frontier follows N_opt = kN C^0.55 and D_opt = C / (6 N_opt) (so D_opt ~ C^0.45), with 3% noise
// in N, and dominated off-optimal runs.
std::vector<RunPoint> compute_optimal_study(uint64_t seed) {
  SplitMix rng(seed);
  std::vector<RunPoint> pts;
  int i = 0;
  for (double c : logspace(1e17, 1e23, 14)) {
    double n = 2e3 * std::pow(c, 0.55) * std::exp(0.03 * normal(rng));
    RunPoint p;
    p.model = "M" + std::to_string(i++);
    p.params = n;
    p.flops = c;
    p.examples = c / (6 * n);
    p.loss = 20 * std::pow(c, -0.05);
    pts.push_back(p);
    RunPoint off = p;  // a too-big model at the same compute: worse
    off.params *= 4;
    off.examples /= 4;
    off.loss *= 1.05;
    pts.push_back(off);
  }
  return pts;
}

TEST(ComputeOptimal, ExponentsRecoveredWithIntervals) {
  BootstrapOptions bo;
  bo.resamples = 400;
  ComputeOptimalFit f = fit_compute_optimal(compute_optimal_study(5), bo);
  EXPECT_EQ(f.n, 14);
  EXPECT_NEAR(f.n_exponent.value, 0.55, 0.01);
  EXPECT_NEAR(f.d_exponent.value, 0.45, 0.01);
  EXPECT_TRUE(f.n_exponent.contains(0.55)) << format_estimate(f.n_exponent);
  EXPECT_TRUE(f.d_exponent.contains(0.45)) << format_estimate(f.d_exponent);
  EXPECT_NEAR(f.n_exponent.value + f.d_exponent.value, 1.0, 1e-9);  // N*D = C/6 exactly
}

TEST(ComputeOptimal, SingleModelAndMissingColumnsThrow) {
  auto pts = compute_optimal_study(5);
  for (auto& p : pts) p.params = 1e8;
  try {
    fit_compute_optimal(pts);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "single model size") && contains(e.what(), "at least 2")) << e.what();
  }
  pts = compute_optimal_study(5);
  pts[0].examples = NAN;
  pts[0].origin = "runs.csv line 2";
  try {
    fit_compute_optimal(pts);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "runs.csv line 2") && contains(e.what(), "examples")) << e.what();
  }
}

// LR sweep: loss = base + 0.05 * (log2 lr - log2 lr_opt)^2 with lr_opt = 1.6 * epochs^slope, on a 2^k grid.
std::vector<RunPoint> lr_sweep(const std::string& model, double slope, const std::vector<double>& epochs,
                               const std::vector<double>& grid) {
  std::vector<RunPoint> pts;
  for (double e : epochs) {
    double lr_opt = 1.6 * std::pow(e, slope);
    for (double lr : grid) {
      for (int seed = 0; seed < 2; ++seed) {
        RunPoint p;
        p.model = model;
        p.params = 1e8;
        p.epochs = e;
        p.lr = lr;
        p.seed = seed;
        double d = std::log2(lr) - std::log2(lr_opt);
        p.loss = 3.0 / std::sqrt(e) + 0.05 * d * d + (seed ? 1e-3 : -1e-3);  // seed noise averages out
        pts.push_back(p);
      }
    }
  }
  return pts;
}

TEST(LearningRate, BestLrBracketAndRefinedOptimum) {
  std::vector<double> grid = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2};
  auto pts = lr_sweep("F0", -0.3, {0.25, 1, 4, 8}, grid);
  auto best = fit_best_lrs(pts);
  ASSERT_EQ(best.size(), 4u);
  for (auto& b : best) {
    double lr_opt = 1.6 * std::pow(b.epochs, -0.3);
    EXPECT_EQ(b.runs, 12);
    EXPECT_EQ(b.grid_size, 6);
    EXPECT_NEAR(std::log2(b.lr), std::log2(lr_opt), 0.5 + 1e-9);  // nearest grid point
    if (b.lr == 3.2) {
      EXPECT_FALSE(b.interior);
      EXPECT_TRUE(std::isnan(b.lr_above));
    } else {
      EXPECT_TRUE(b.interior);
      EXPECT_DOUBLE_EQ(b.lr_below, b.lr / 2);
      EXPECT_DOUBLE_EQ(b.lr_above, b.lr * 2);
      EXPECT_NEAR(b.refined_lr / lr_opt, 1.0, 1e-9);  // quadratic in log lr: the parabola vertex is exact
    }
  }
}

TEST(LearningRate, SlopeRecoveredPerModel) {
  std::vector<double> grid = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2};
  auto pts = lr_sweep("F0", -0.2, {0.5, 1, 2, 4, 8}, grid);
  auto more = lr_sweep("F3", -0.45, {0.5, 1, 2, 4, 8}, grid);
  pts.insert(pts.end(), more.begin(), more.end());
  auto few = lr_sweep("F7", -0.5, {1, 2}, grid);
  pts.insert(pts.end(), few.begin(), few.end());
  std::vector<std::pair<std::string, std::string>> skipped;
  auto slopes = fit_lr_slopes(fit_best_lrs(pts), &skipped);
  ASSERT_EQ(slopes.size(), 2u);
  EXPECT_EQ(slopes[0].model, "F0");
  EXPECT_NEAR(slopes[0].law.b, -0.2, 1e-6);
  EXPECT_NEAR(slopes[0].law.a, 1.6, 1e-6);
  EXPECT_EQ(slopes[1].model, "F3");
  EXPECT_NEAR(slopes[1].law.b, -0.45, 1e-6);
  EXPECT_EQ(slopes[1].edge_optima, 0);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].first, "F7");
  EXPECT_TRUE(contains(skipped[0].second, "at least 3"));
}

TEST(LearningRate, EdgeOptimaLeftOutOfTheSlopeWhenEnoughBracketedOnes) {
  // lr_opt = 1.6 e^-0.5 exceeds the grid's top (1.6) at e = 0.5 and sits on it at e = 1: two edge optima.
  auto pts = lr_sweep("F5", -0.5, {0.5, 1, 2, 4, 8, 16}, {0.1, 0.2, 0.4, 0.8, 1.6});
  auto slopes = fit_lr_slopes(fit_best_lrs(pts));
  ASSERT_EQ(slopes.size(), 1u);
  EXPECT_EQ(slopes[0].edge_optima, 2);
  EXPECT_TRUE(slopes[0].edge_excluded);
  EXPECT_NEAR(slopes[0].law.b, -0.5, 1e-6);
  EXPECT_EQ(slopes[0].min_epochs, 0.5);  // the measured range still covers every budget
}

TEST(LearningRate, MissingLrColumnThrows) {
  auto pts = lr_sweep("F0", -0.2, {1, 2, 4}, {0.4, 0.8});
  pts[3].lr = NAN;
  EXPECT_THROW(fit_best_lrs(pts), UserError);
}

TEST(Study, PartialAvailabilityRecordedNotThrown) {
  // One model only, no params/examples: frontier works, compute-optimal and Chinchilla record why not.
  auto pts = lr_sweep("F0", -0.3, {0.25, 0.5, 1, 2, 4, 8}, {0.4, 0.8, 1.6, 3.2});
  for (auto& p : pts) {
    p.flops = 1e18 * p.epochs;
    p.params = NAN;
  }
  FitOptions o;
  o.bootstrap.resamples = 50;
  StudyFit s = fit_study(pts, o);
  EXPECT_TRUE(s.best_lrs_error.empty()) << s.best_lrs_error;
  EXPECT_EQ(s.best_lrs.size(), 6u);
  EXPECT_EQ(s.lr_slopes.size(), 1u);
  ASSERT_TRUE(s.frontier.has_value()) << s.frontier_error;
  EXPECT_FALSE(s.compute_optimal.has_value());
  EXPECT_TRUE(contains(s.compute_optimal_error, "params")) << s.compute_optimal_error;
  EXPECT_FALSE(s.chinchilla.has_value());
  EXPECT_FALSE(s.chinchilla_error.empty());
  nlohmann::json j = to_json(s);
  EXPECT_TRUE(j["compute_optimal"].contains("error"));
  EXPECT_TRUE(j["frontier"]["power_law"]["b"]["value"].is_number());
  std::string text = format_study_fit(s);
  EXPECT_TRUE(contains(text, "Compute frontier") && contains(text, "not available")) << text;
  EXPECT_THROW(fit_study({}), UserError);
}

}  // namespace
}  // namespace nfscale::scaling
