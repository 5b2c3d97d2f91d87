// test_chinchilla.cpp - Chinchilla Approach 3 recovers known E, A, B, alpha, beta on a grid of (N, D); bootstrap
// intervals contain the truth; too few points / model sizes fail clearly.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/scaling/chinchilla.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::scaling {
namespace {

// Hoffmann et al.'s fitted values, used as the known truth.
const ChinchillaParams kTruth{1.69, 406.4, 410.7, 0.34, 0.28};

std::vector<RunPoint> grid_study(double noise, uint64_t seed) {
  SplitMix rng(seed);
  std::vector<RunPoint> pts;
  for (double N : {1e7, 3e7, 1e8, 3e8, 1e9, 3e9})
    for (double D : {1e8, 1e9, 1e10, 1e11, 1e12}) {
      RunPoint p;
      p.model = "N" + std::to_string(N);
      p.params = N;
      p.examples = D;
      double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
      double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
      p.loss = kTruth(N, D) * std::exp(noise * z);
      pts.push_back(p);
    }
  return pts;
}

TEST(Chinchilla, ExactDataRecovered) {
  BootstrapOptions bo;
  bo.resamples = 0;
  auto t0 = std::chrono::steady_clock::now();
  ChinchillaFit f = fit_chinchilla(grid_study(0.0, 1), {}, bo);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("full-grid Chinchilla fit on %d points, %d starts: %.2f s\n", f.n, f.starts, secs);
  EXPECT_EQ(f.starts, 5 * 5 * 5 * 6 * 6);
  EXPECT_NEAR(f.E.value, kTruth.E, 1e-3 * kTruth.E);
  EXPECT_NEAR(f.alpha.value, kTruth.alpha, 1e-3);
  EXPECT_NEAR(f.beta.value, kTruth.beta, 1e-3);
  EXPECT_NEAR(f.A.value / kTruth.A, 1.0, 0.02);
  EXPECT_NEAR(f.B.value / kTruth.B, 1.0, 0.02);
  EXPECT_NEAR(f.a_exponent.value, 0.28 / 0.62, 1e-3);
  EXPECT_NEAR(f.b_exponent.value, 0.34 / 0.62, 1e-3);
  EXPECT_GT(f.r2_log, 0.99999);
}

TEST(Chinchilla, NoisyDataRecovered) {
  BootstrapOptions bo;
  bo.resamples = 100;
  bo.seed = 3;
  ChinchillaOptions co;
  co.coarse_grid = true;
  ChinchillaFit f = fit_chinchilla(grid_study(0.005, 2), co, bo);
  EXPECT_NEAR(f.alpha.value, kTruth.alpha, 0.05);
  EXPECT_NEAR(f.beta.value, kTruth.beta, 0.05);
  EXPECT_NEAR(f.E.value, kTruth.E, 0.1);
  EXPECT_GT(f.bootstrap_succeeded, 95);
  EXPECT_LT(f.alpha.lo, f.alpha.value);
  EXPECT_GT(f.alpha.hi, f.alpha.value);
  nlohmann::json j = to_json(f);
  EXPECT_EQ(j["alpha"]["value"].get<double>(), f.alpha.value);
}

// Coverage of the 95% bootstrap intervals over independent noisy data sets: each interval should contain the
// truth in most data sets (a single data set misses 5% of the time by design, so one is not a test).
TEST(Chinchilla, BootstrapIntervalsCoverTheTruth) {
  const int datasets = 20;
  BootstrapOptions bo;
  bo.resamples = 100;
  ChinchillaOptions co;
  co.coarse_grid = true;
  int cover_alpha = 0, cover_beta = 0, cover_E = 0, cover_a = 0;
  for (int k = 0; k < datasets; ++k) {
    bo.seed = 100 + k;
    ChinchillaFit f = fit_chinchilla(grid_study(0.005, 1000 + k), co, bo);
    cover_alpha += f.alpha.contains(kTruth.alpha);
    cover_beta += f.beta.contains(kTruth.beta);
    cover_E += f.E.contains(kTruth.E);
    cover_a += f.a_exponent.contains(0.28 / 0.62);
  }
  std::printf("coverage over %d data sets: alpha %d beta %d E %d a %d\n", datasets, cover_alpha, cover_beta, cover_E,
              cover_a);
  EXPECT_GE(cover_alpha, 15);
  EXPECT_GE(cover_beta, 15);
  EXPECT_GE(cover_E, 15);
  EXPECT_GE(cover_a, 15);
}

TEST(Chinchilla, DegenerateInputThrows) {
  auto pts = grid_study(0.0, 1);
  std::vector<RunPoint> few(pts.begin(), pts.begin() + 5);
  try {
    fit_chinchilla(few);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("at least 6"), std::string::npos) << e.what();
  }
  std::vector<RunPoint> one_model;
  for (auto& p : pts)
    if (p.params == 1e8) one_model.push_back(p);
  one_model.push_back(one_model[0]);
  one_model.push_back(one_model[1]);
  one_model[5].examples *= 3;  // 7 distinct (N, D) points of a single model size
  one_model[6].examples *= 3;
  try {
    fit_chinchilla(one_model);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("distinct model size"), std::string::npos) << e.what();
  }
  pts[4].examples = NAN;
  pts[4].origin = "runs.csv line 6";
  try {
    fit_chinchilla(pts);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("runs.csv line 6"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::scaling
