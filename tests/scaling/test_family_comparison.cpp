// test_family_comparison.cpp - two families compared at equal compute: the fitted loss ratio and its interval
// against the generating laws, the leader per compute level, the verdict sentence, the exponents, the best cell
// reached by each compute, and the non-overlapping case.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/scaling/family_comparison.h"
#include "nfscale/scaling/fits.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::scaling {
namespace {

// A family's runs: models m0..m{k-1}, each a frontier-like point L = a C^b exp(noise) at compute spaced evenly in
// log from c_lo to c_hi, plus one off-frontier point per model (worse loss at more compute). Noise is a fixed
// pseudo-random draw of sd `sd` in log loss.
std::vector<RunPoint> family_points(const std::string& prefix, double a, double b, double c_lo, double c_hi, int n,
                                    double sd, uint64_t seed) {
  SplitMix rng(seed);
  std::vector<RunPoint> out;
  for (int i = 0; i < n; ++i) {
    RunPoint p;
    p.model = prefix + std::to_string(i % 3);
    p.epochs = 1 << i;
    p.lr = 0.1;
    p.flops = c_lo * std::pow(c_hi / c_lo, double(i) / (n - 1));
    p.loss = a * std::pow(p.flops, b) * std::exp(sd * normal_draw(rng));
    p.top1_err = 0.1 + 0.01 * i;
    p.origin = prefix + " run " + std::to_string(i);
    out.push_back(p);
  }
  return out;
}

FrontierFit fit(const std::vector<RunPoint>& pts) {
  BootstrapOptions o;
  o.resamples = 400;
  o.seed = 7;
  return fit_frontier(pts, o);
}

TEST(FamilyComparison, ALowerCurveLeadsEverywhereByTheGeneratingRatio) {
  // A: L = 2 C^-0.1, B: L = 3 C^-0.1 (A's loss 1/3 lower at every compute), both over 1e10..1e12 with 1% noise.
  auto pa = family_points("A", 2.0, -0.1, 1e10, 1e12, 8, 0.01, 1);
  auto pb = family_points("B", 3.0, -0.1, 2e10, 2e12, 8, 0.01, 2);
  const FrontierFit fa = fit(pa), fb = fit(pb);
  const FamilyComparison c = compare_families({"A", &fa, pa}, {"B", &fb, pb}, 4);
  EXPECT_TRUE(c.error.empty());
  EXPECT_DOUBLE_EQ(c.overlap_lo, fb.min_flops);
  EXPECT_DOUBLE_EQ(c.overlap_hi, fa.max_flops);
  ASSERT_EQ(c.levels.size(), 4u);
  EXPECT_DOUBLE_EQ(c.levels.front().flops, c.overlap_lo);
  EXPECT_NEAR(c.levels.back().flops, c.overlap_hi, 1e-6 * c.overlap_hi);
  for (const auto& l : c.levels) {
    // The point value is the ratio of the two point fits, and the interval holds the generating ratio 2/3.
    EXPECT_NEAR(l.log_ratio.value, std::log(fa.power(l.flops) / fb.power(l.flops)), 1e-12);
    EXPECT_LT(l.log_ratio.lo, std::log(2.0 / 3.0));
    EXPECT_GT(l.log_ratio.hi, std::log(2.0 / 3.0));
    EXPECT_LT(l.log_ratio.hi, 0.0);
    EXPECT_EQ(l.leader, -1);
    EXPECT_NEAR(l.fitted_a.value, fa.power(l.flops), 1e-12);
  }
  EXPECT_NE(c.verdict.find("A is ahead from"), std::string::npos) << c.verdict;
  EXPECT_NE(c.verdict.find("(held-out loss 33%"), std::string::npos) << c.verdict;  // 1 - 2/3
  EXPECT_NE(c.verdict.find("slopes are indistinguishable"), std::string::npos) << c.verdict;
  EXPECT_TRUE(c.exponent_diff.contains(0.0));
  EXPECT_EQ(to_json(c)["levels"][0]["leader"], "A");
}

TEST(FamilyComparison, SameLawIsIndistinguishableAndCrossingLawsSplitTheRange) {
  auto pa = family_points("A", 2.0, -0.1, 1e10, 1e12, 8, 0.02, 3);
  auto pb = family_points("B", 2.0, -0.1, 1e10, 1e12, 8, 0.02, 4);
  const FrontierFit fa = fit(pa), fb = fit(pb);
  const FamilyComparison same = compare_families({"A", &fa, pa}, {"B", &fb, pb});
  for (const auto& l : same.levels) EXPECT_EQ(l.leader, 0) << l.flops;
  EXPECT_NE(same.verdict.find("indistinguishable from"), std::string::npos) << same.verdict;

  // B = 8 C^-0.15 crosses A = 2 C^-0.1 at C = 4^(1/0.05) = 1.1e12: A ahead below, B ahead above, and B's exponent
  // is the more negative one.
  auto pc = family_points("B", 8.0, -0.15, 1e10, 1e14, 10, 0.005, 5);
  auto pa2 = family_points("A", 2.0, -0.1, 1e10, 1e14, 10, 0.005, 6);
  const FrontierFit fa2 = fit(pa2), fc = fit(pc);
  const FamilyComparison cross = compare_families({"A", &fa2, pa2}, {"B", &fc, pc}, 5);
  ASSERT_EQ(cross.levels.size(), 5u);
  EXPECT_EQ(cross.levels.front().leader, -1);
  EXPECT_EQ(cross.levels.back().leader, 1);
  EXPECT_GT(cross.exponent_diff.lo, 0.0);  // -0.1 - (-0.15) = 0.05 > 0
  EXPECT_NEAR(cross.exponent_diff.value, 0.05, 0.01);
  EXPECT_NE(cross.verdict.find("A is ahead"), std::string::npos) << cross.verdict;
  EXPECT_NE(cross.verdict.find("B is ahead"), std::string::npos) << cross.verdict;
  EXPECT_NE(cross.verdict.find("B's loss falls faster"), std::string::npos) << cross.verdict;
}

TEST(FamilyComparison, BestReachedIsTheLastFrontierCellWithinTheComputeAndAveragesTop1OverSeeds) {
  auto pa = family_points("A", 2.0, -0.1, 1e10, 1e12, 6, 0.0, 1);
  auto pb = family_points("B", 3.0, -0.1, 1e10, 1e12, 6, 0.0, 2);
  // A second seed of A's cheapest cell with another top-1 error: the cell's error is the mean.
  RunPoint again = pa.front();
  again.seed = 1;
  again.top1_err = 0.3;
  pa.push_back(again);
  const FrontierFit fa = fit(pa), fb = fit(pb);
  const FamilyComparison c = compare_families({"A", &fa, pa}, {"B", &fb, pb}, 3);
  ASSERT_EQ(c.levels.size(), 3u);
  const BestByCompute& first = c.levels.front().best_a;
  EXPECT_EQ(first.model, pa.front().model);
  EXPECT_DOUBLE_EQ(first.flops, pa.front().flops);
  EXPECT_NEAR(first.top1_err, (0.1 + 0.3) / 2, 1e-12);
  const BestByCompute& last = c.levels.back().best_b;  // all of B's cells are within the last level
  EXPECT_DOUBLE_EQ(last.flops, pb.back().flops);
  EXPECT_NEAR(last.loss, pb.back().loss, 1e-12);
}

TEST(FamilyComparison, DisjointComputeRangesAreNotComparedAndSaySo) {
  auto pa = family_points("A", 2.0, -0.1, 1e8, 1e9, 5, 0.01, 1);
  auto pb = family_points("B", 2.0, -0.1, 1e11, 1e12, 5, 0.01, 2);
  const FrontierFit fa = fit(pa), fb = fit(pb);
  const FamilyComparison c = compare_families({"A", &fa, pa}, {"B", &fb, pb});
  EXPECT_TRUE(c.levels.empty());
  EXPECT_NE(c.error.find("do not overlap"), std::string::npos) << c.error;
  EXPECT_NE(c.verdict.find("Not compared at equal compute"), std::string::npos) << c.verdict;
  EXPECT_NE(format_comparison(c).find("exponent b"), std::string::npos);
  EXPECT_THROW(compare_families({"A", nullptr, pa}, {"B", &fb, pb}), UserError);
  EXPECT_THROW(compare_families({"A", &fa, pa}, {"B", &fb, pb}, 1), UserError);
}

}  // namespace
}  // namespace nfscale::scaling
