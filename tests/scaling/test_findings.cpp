// test_findings.cpp - the four findings' verdicts on synthetic fits with known answers: every verdict value of
// every finding, the numbers behind it (residuals, curvature, exponents, slopes, argmins) and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/scaling/findings.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::scaling {
namespace {

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

// Frontier study: 12 compute levels, each a good run on `law` and a clearly worse one, 2 seeds each with
// multiplicative noise exp(sigma z).
template <class Law>
std::vector<RunPoint> frontier_study(Law law, double sigma, uint64_t seed, int levels = 12) {
  SplitMix rng(seed);
  std::vector<RunPoint> pts;
  for (int i = 0; i < levels; ++i) {
    double c = 1e16 * std::pow(10.0, i * 0.5);
    for (int s = 0; s < 2; ++s)
      for (double lr : {1.6, 6.4}) {
        RunPoint p;
        p.model = "M";
        p.flops = c;
        p.lr = lr;
        p.seed = s;
        p.loss = law(c) * (lr > 2 ? 1.3 : 1.0) * std::exp(sigma * normal_draw(rng));
        pts.push_back(p);
      }
  }
  return pts;
}

BootstrapOptions boot(int resamples = 300) {
  BootstrapOptions b;
  b.resamples = resamples;
  b.seed = 5;
  return b;
}

TEST(Findings, LinearityReproducedOnAPowerLaw) {
  auto pts = frontier_study([](double c) { return 25 * std::pow(c, -0.06); }, 0.005, 1);
  FrontierFit fr = fit_frontier(pts, boot());
  LinearityFinding f = linearity_finding(fr, boot());
  EXPECT_EQ(f.verdict, Verdict::Reproduced) << f.reason;
  EXPECT_GT(f.r2_log, 0.95);
  EXPECT_TRUE(f.curvature.contains(0)) << format_estimate(f.curvature);
  ASSERT_EQ(f.residuals.size(), 12u);
  double mean = 0;
  for (double r : f.residuals) mean += r / 12;
  EXPECT_NEAR(mean, 0, 1e-12);  // OLS residuals in log space sum to zero
  EXPECT_EQ(to_json(f)["verdict"], "reproduced");
}

TEST(Findings, LinearityNotReproducedWhenTheFrontierBends) {
  // L = 1.5 + 40 C^-0.1: flattens towards E in log-log axes (positive curvature).
  auto pts = frontier_study([](double c) { return 1.5 + 40 * std::pow(c, -0.1); }, 0.002, 2);
  LinearityFinding f = linearity_finding(fit_frontier(pts, boot()), boot());
  EXPECT_EQ(f.verdict, Verdict::NotReproduced) << f.reason;
  EXPECT_GT(f.curvature.lo, 0) << format_estimate(f.curvature);
  EXPECT_TRUE(has(f.reason, "flattens")) << f.reason;
}

TEST(Findings, LinearityInconclusiveWithFewPointsOrNoBootstrap) {
  auto pts = frontier_study([](double c) { return 25 * std::pow(c, -0.06); }, 0.0, 3, 3);
  LinearityFinding f = linearity_finding(fit_frontier(pts, boot()), boot());
  EXPECT_EQ(f.verdict, Verdict::Inconclusive);
  EXPECT_TRUE(has(f.reason, "at least 4")) << f.reason;
  auto more = frontier_study([](double c) { return 25 * std::pow(c, -0.06); }, 0.005, 3);
  LinearityFinding g = linearity_finding(fit_frontier(more, boot(0)), boot(0));
  EXPECT_EQ(g.verdict, Verdict::Inconclusive);
  EXPECT_TRUE(has(g.reason, "no bootstrap interval")) << g.reason;
}

// A compute-optimal fit with given exponent samples (aN, e) ~ independent normals.
ComputeOptimalFit growth_fit(double an, double sn, double ae, double se) {
  ComputeOptimalFit f;
  f.n_exponent.value = an;
  f.e_exponent.value = ae;
  SplitMix rng(11);
  std::vector<double> a, e;
  for (int r = 0; r < 1000; ++r) {
    std::vector<double> row{1, an + sn * normal_draw(rng), 1, 0, 1, ae + se * normal_draw(rng)};
    a.push_back(row[1]);
    e.push_back(row[5]);
    f.samples.samples.push_back(row);
  }
  std::tie(f.n_exponent.lo, f.n_exponent.hi) = percentile_interval(a, 0.95);
  std::tie(f.e_exponent.lo, f.e_exponent.hi) = percentile_interval(e, 0.95);
  return f;
}

TEST(Findings, GrowthVerdicts) {
  GrowthFinding same = growth_finding(growth_fit(0.5, 0.05, 0.5, 0.05), 0.95);
  EXPECT_EQ(same.verdict, Verdict::Reproduced) << same.reason;
  EXPECT_TRUE(same.difference.contains(0));
  GrowthFinding different = growth_finding(growth_fit(0.8, 0.03, 0.2, 0.03), 0.95);
  EXPECT_EQ(different.verdict, Verdict::NotReproduced) << different.reason;
  EXPECT_NEAR(different.difference.value, 0.6, 1e-12);
  EXPECT_GT(different.difference.lo, 0.4);
  EXPECT_TRUE(has(different.reason, "model size grows faster")) << different.reason;
  GrowthFinding shrinking = growth_finding(growth_fit(-0.5, 0.05, 0.5, 0.05), 0.95);
  EXPECT_EQ(shrinking.verdict, Verdict::NotReproduced);
  EXPECT_TRUE(has(shrinking.reason, "does not grow")) << shrinking.reason;
  GrowthFinding unclear = growth_finding(growth_fit(0.1, 0.2, 0.5, 0.05), 0.95);
  EXPECT_EQ(unclear.verdict, Verdict::Inconclusive);
  EXPECT_TRUE(has(unclear.reason, "contains 0")) << unclear.reason;
  ComputeOptimalFit no_epochs = growth_fit(0.5, 0.05, 0.5, 0.05);
  no_epochs.e_exponent = Estimate{};
  EXPECT_EQ(growth_finding(no_epochs, 0.95).verdict, Verdict::Inconclusive);
}

TEST(Findings, GrowthReproducedEndToEnd) {
  // N_opt = 2e3 C^0.5 with a +-3% scatter in the pattern (+, -, -, +) (orthogonal to log C over each period, so the
  // fitted exponents are exactly 0.5 and the truth is "same rate"); epochs = C / (6 N) / 1e6 ~ C^0.5 too;
  // off-optimal runs (4x larger, 5% worse) are dominated.
  std::vector<RunPoint> pts;
  const double pattern[4] = {0.03, -0.03, -0.03, 0.03};
  for (int i = 0; i < 16; ++i) {
    double c = 1e17 * std::pow(10.0, i * 0.3);
    double n = 2e3 * std::sqrt(c) * std::exp(pattern[i % 4]);
    for (double k : {1.0, 4.0}) {
      RunPoint p;
      p.model = "M" + std::to_string(i) + (k > 1 ? "big" : "");
      p.params = n * k;
      p.flops = c;
      p.examples = c / (6 * p.params);
      p.epochs = p.examples / 1e6;
      p.loss = 20 * std::pow(c, -0.05) * (k > 1 ? 1.05 : 1.0);
      pts.push_back(p);
    }
  }
  ComputeOptimalFit f = fit_compute_optimal(pts, boot(400));
  EXPECT_NEAR(f.n_exponent.value, 0.5, 1e-9);
  EXPECT_NEAR(f.e_exponent.value, 0.5, 1e-9);
  GrowthFinding g = growth_finding(f, 0.95);
  EXPECT_EQ(g.verdict, Verdict::Reproduced) << g.reason;
}

LrSlope slope(const std::string& model, double params, double b, double half) {
  LrSlope s;
  s.model = model;
  s.params = params;
  s.law.b = b;
  s.slope.value = b;
  s.slope.lo = b - half;
  s.slope.hi = b + half;
  return s;
}

BestLr best(const std::string& model, double epochs, double lr) {
  BestLr b;
  b.model = model;
  b.epochs = epochs;
  b.refined_lr = lr;
  return b;
}

TEST(Findings, LrVerdicts) {
  std::vector<BestLr> lrs = {best("S", 0.25, 1.6), best("S", 2, 1.0), best("M", 0.25, 1.6), best("L", 0.25, 1.3)};
  // Falling, faster for larger models, about equal at the smallest budget.
  LrFinding ok = lr_finding({slope("S", 1e6, -0.1, 0.03), slope("M", 1e7, -0.2, 0.03), slope("L", 1e8, -0.3, 0.03)},
                            lrs, boot(400));
  EXPECT_EQ(ok.verdict, Verdict::Reproduced) << ok.reason;
  EXPECT_NEAR(ok.size_trend.value, -0.1 / std::log(10.0), 1e-12);
  EXPECT_LT(ok.size_trend.hi, 0);
  EXPECT_NEAR(ok.small_budget_lr_ratio, 1.6 / 1.3, 1e-12);
  ASSERT_EQ(ok.models.size(), 3u);
  EXPECT_EQ(ok.models[0].smallest_budget_lr, 1.6);
  // Rising for one model.
  LrFinding rising = lr_finding({slope("S", 1e6, 0.3, 0.05), slope("M", 1e7, -0.2, 0.03)}, lrs, boot(400));
  EXPECT_EQ(rising.verdict, Verdict::NotReproduced);
  EXPECT_TRUE(has(rising.reason, "rises")) << rising.reason;
  // Larger models fall more slowly.
  LrFinding reversed =
      lr_finding({slope("S", 1e6, -0.5, 0.03), slope("M", 1e7, -0.3, 0.03), slope("L", 1e8, -0.1, 0.03)}, lrs, boot(400));
  EXPECT_EQ(reversed.verdict, Verdict::NotReproduced);
  EXPECT_GT(reversed.size_trend.lo, 0);
  // Intervals straddling 0, and a single model.
  LrFinding vague = lr_finding({slope("S", 1e6, -0.1, 0.5), slope("M", 1e7, -0.2, 0.5)}, lrs, boot(400));
  EXPECT_EQ(vague.verdict, Verdict::Inconclusive) << vague.reason;
  LrFinding one = lr_finding({slope("S", 1e6, -0.1, 0.03)}, lrs, boot(400));
  EXPECT_EQ(one.verdict, Verdict::Inconclusive);
  EXPECT_TRUE(has(one.reason, "at least 2 models")) << one.reason;
}

TEST(Findings, LrSlopeIntervalIsTheOlsTInterval) {
  // Refined LRs 1.6 e^-0.2 ... with a known residual pattern: the slope interval must match the textbook formula.
  std::vector<BestLr> b = {best("S", 1, 1.6), best("S", 2, 1.6 * std::pow(2, -0.2) * 1.05),
                           best("S", 4, 1.6 * std::pow(4, -0.2) / 1.05), best("S", 8, 1.6 * std::pow(8, -0.2))};
  for (auto& x : b) x.interior = true;
  auto s = fit_lr_slopes(b, nullptr, 0.95);
  ASSERT_EQ(s.size(), 1u);
  // By hand: x = log epochs, y = log lr; b = Sxy / Sxx; se = sqrt(SSR / (n - 2) / Sxx); t(0.975, 2) = 4.302653.
  double mx = 0, my = 0;
  for (auto& x : b) mx += std::log(x.epochs) / 4, my += std::log(x.refined_lr) / 4;
  double sxx = 0, sxy = 0;
  for (auto& x : b) sxx += std::pow(std::log(x.epochs) - mx, 2), sxy += (std::log(x.epochs) - mx) * (std::log(x.refined_lr) - my);
  double slope_hat = sxy / sxx, ssr = 0;
  for (auto& x : b) ssr += std::pow(std::log(x.refined_lr) - my - slope_hat * (std::log(x.epochs) - mx), 2);
  double half = 4.302653 * std::sqrt(ssr / 2 / sxx);
  EXPECT_NEAR(s[0].slope.value, slope_hat, 1e-12);
  EXPECT_NEAR(s[0].slope.hi - s[0].slope.value, half, 1e-6);
  EXPECT_NEAR(s[0].slope.value - s[0].slope.lo, half, 1e-6);
}

FinetunePoint ft(const std::string& model, double params, double epochs, double flops, double pre, double err) {
  return {model, params, epochs, flops, pre, err};
}

TEST(Findings, FinetuneVerdicts) {
  // Two budgets; at each the pre-training optimum is the smaller model with more epochs, and fine-tuning prefers
  // the larger model with fewer epochs.
  std::vector<FinetunePoint> yes = {ft("S", 1e6, 4, 1e12, 1.00, 0.20), ft("L", 4e6, 1, 1.1e12, 1.02, 0.18),
                                    ft("S", 1e6, 16, 4e12, 0.90, 0.15), ft("L", 4e6, 4, 4.2e12, 0.91, 0.14)};
  FinetuneFinding a = finetune_finding(yes);
  EXPECT_EQ(a.verdict, Verdict::Reproduced) << a.reason;
  ASSERT_EQ(a.budgets.size(), 2u);
  EXPECT_EQ(a.budgets[0].pretrain_best, "S");
  EXPECT_EQ(a.budgets[0].finetune_best, "L");
  EXPECT_EQ(a.larger_fewer, 2);
  auto no = yes;
  no[1].finetune_error = 0.25;
  no[3].finetune_error = 0.16;
  FinetuneFinding b = finetune_finding(no);
  EXPECT_EQ(b.verdict, Verdict::NotReproduced) << b.reason;
  EXPECT_EQ(b.same, 2);
  auto mixed = yes;
  mixed[3].finetune_error = 0.16;
  EXPECT_EQ(finetune_finding(mixed).verdict, Verdict::Inconclusive);
  // Too few: one comparable budget (the other runs are alone at their compute).
  std::vector<FinetunePoint> few = {yes[0], yes[1], ft("S", 1e6, 64, 1e14, 0.8, 0.1)};
  FinetuneFinding c = finetune_finding(few);
  EXPECT_EQ(c.verdict, Verdict::Inconclusive);
  EXPECT_TRUE(has(c.reason, "at least 2 budgets")) << c.reason;
  EXPECT_EQ(finetune_finding({}).verdict, Verdict::Inconclusive);
  auto bad = yes;
  bad[2].finetune_error = NAN;
  try {
    finetune_finding(bad);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_TRUE(has(e.what(), "point #3") && has(e.what(), "finetune_error")) << e.what();
  }
}

TEST(Findings, StudyFindingsCarryReasonsForMissingFits) {
  StudyFit s;
  s.frontier_error = "only 2 point(s) on the compute frontier";
  s.compute_optimal_error = "single model size";
  s.best_lrs_error = "no lr column";
  Findings f = study_findings(s, {});
  EXPECT_EQ(f.linearity.verdict, Verdict::Inconclusive);
  EXPECT_TRUE(has(f.linearity.reason, "only 2 point")) << f.linearity.reason;
  EXPECT_TRUE(has(f.growth.reason, "single model size"));
  EXPECT_TRUE(has(f.lr.reason, "no lr column"));
  nlohmann::json j = to_json(f);
  EXPECT_EQ(j["finetune_prefers_larger"]["verdict"], "inconclusive");
  EXPECT_TRUE(has(format_findings(f), "(4) fine-tuning"));
}

}  // namespace
}  // namespace nfscale::scaling
