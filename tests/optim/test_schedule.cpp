// test_schedule.cpp - LR scaling, fractional epoch budgets in steps (exact integer arithmetic around binary
// floating point), and the warm-up + cosine schedule's values at its landmarks, clamping and bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "nfscale/optim/schedule.h"
#include "nfscale/util/error.h"

namespace nfscale::optim {
namespace {

TEST(Schedule, ScaledLr) {
  EXPECT_DOUBLE_EQ(scaled_lr(0.1, 4096), 1.6);
  EXPECT_DOUBLE_EQ(scaled_lr(0.1, 256), 0.1);
  EXPECT_DOUBLE_EQ(scaled_lr(0.2, 128), 0.1);
  EXPECT_THROW(scaled_lr(0.1, 0), UserError);
}

TEST(Schedule, StepsForBudgetOnFashionMnistSize) {
  const int64_t N = 60000;
  // 0.25 * 60000 = 15000 examples; / 128 = 117.19 -> 118 steps, etc.
  EXPECT_EQ(steps_for_budget(0.25, N, 128), 118);
  EXPECT_EQ(steps_for_budget(0.5, N, 128), 235);   // 30000 / 128 = 234.375
  EXPECT_EQ(steps_for_budget(1, N, 128), 469);     // 468.75
  EXPECT_EQ(steps_for_budget(2, N, 128), 938);     // 937.5
  EXPECT_EQ(steps_for_budget(4, N, 128), 1875);    // exact
  EXPECT_EQ(steps_for_budget(8, N, 128), 3750);    // exact
  EXPECT_EQ(steps_for_budget(1, N, 100), 600);     // exact: no extra step
  EXPECT_EQ(steps_for_budget(0.25, N, 15000), 1);
}

TEST(Schedule, StepsForBudgetAwkwardSizes) {
  // 0.07 is not representable: 0.07 * 100 = 7.000000000000001 must count 7 examples (a naive ceil gives 8).
  EXPECT_EQ(examples_for_budget(0.07, 100), 7);
  EXPECT_EQ(steps_for_budget(0.07, 100, 7), 1);
  EXPECT_EQ(examples_for_budget(0.14, 100), 14);        // 14.000000000000002
  EXPECT_EQ(examples_for_budget(0.1 + 0.2, 1000), 300);  // 300.00000000000006
  EXPECT_EQ(steps_for_budget(0.1 + 0.2, 1000, 100), 3);
  EXPECT_EQ(examples_for_budget(1.15, 100), 115);       // 114.99999999999999
  // Genuinely fractional example counts round up.
  EXPECT_EQ(examples_for_budget(0.25, 1281167), 320292);  // 320291.75
  EXPECT_EQ(steps_for_budget(0.25, 1281167, 4096), 79);   // 320292 / 4096 = 78.2
  EXPECT_EQ(steps_for_budget(8, 1281167, 4096), 2503);    // 10249336 / 4096 = 2502.3
  EXPECT_EQ(examples_for_budget(1.0 / 3.0, 7), 3);        // 2.333 -> 3
  EXPECT_EQ(steps_for_budget(1, 1, 4096), 1);
  EXPECT_EQ(steps_for_budget(1e-9, 1000, 1), 1);          // tiny budgets still give one step
  // Every budget of the study, on an odd N with an odd batch, agrees with exact rational arithmetic.
  const int64_t N = 12345, B = 77;
  const int64_t quarter_examples[] = {1, 2, 4, 8, 16, 32};  // budgets in quarter epochs
  for (int64_t q : quarter_examples) {
    const int64_t exact_examples = (q * N + 3) / 4;  // ceil(q * N / 4)
    EXPECT_EQ(steps_for_budget(q / 4.0, N, B), (exact_examples + B - 1) / B) << q / 4.0;
  }
}

TEST(Schedule, StepsForBudgetBadInput) {
  EXPECT_THROW(steps_for_budget(0, 100, 10), UserError);
  EXPECT_THROW(steps_for_budget(-1, 100, 10), UserError);
  EXPECT_THROW(steps_for_budget(std::nan(""), 100, 10), UserError);
  EXPECT_THROW(steps_for_budget(1, 0, 10), UserError);
  EXPECT_THROW(steps_for_budget(1, 100, 0), UserError);
  EXPECT_THROW(steps_for_budget(1e30, 100, 10), UserError);
}

TEST(Schedule, WarmupCosineLandmarks) {
  // T = 101 steps (0..100), W = 10: lr(0) = 0, lr(5) = peak/2, lr(10) = peak, cosine midpoint at t = 55,
  // exactly 0 at t = 100.
  const double peak = 1.6;
  WarmupCosine s(peak, 101, 10);
  EXPECT_EQ(s(0), 0.0);
  EXPECT_DOUBLE_EQ(s(5), 0.8);
  EXPECT_DOUBLE_EQ(s(10), peak);
  EXPECT_NEAR(s(55), peak / 2, 1e-15);
  EXPECT_NEAR(s(11), peak * 0.5 * (1 + std::cos(M_PI / 90)), 1e-15);
  EXPECT_EQ(s(100), 0.0);
  EXPECT_GT(s(99), 0.0);
  EXPECT_EQ(s(1000), 0.0);  // beyond the end: clamped to the last step
  for (int t = 10; t < 100; ++t) EXPECT_GT(s(t), s(t + 1)) << t;  // strictly decreasing after warm-up
  for (int t = 0; t < 10; ++t) EXPECT_LT(s(t), s(t + 1)) << t;    // strictly increasing during warm-up
}

TEST(Schedule, NoWarmupStartsAtPeak) {
  WarmupCosine s(0.4, 11, 0);
  EXPECT_EQ(s(0), 0.4);
  EXPECT_NEAR(s(5), 0.2, 1e-16);
  EXPECT_EQ(s(10), 0.0);
}

TEST(Schedule, FractionalWarmupFromEpochs) {
  // Official form: 5 epochs of 1281167 images at batch 4096 = 1563.94 warm-up steps (fractional).
  const double w = warmup_steps_for_epochs(5, 1281167, 4096);
  EXPECT_NEAR(w, 5.0 * 1281167 / 4096, 1e-9);
  WarmupCosine s(1.6, 112590, w);
  EXPECT_NEAR(s(1000), 1.6 * 1000 / w, 1e-15);
  EXPECT_NEAR(s(1564), 1.6 * 0.5 * (1 + std::cos(M_PI * (1564 - w) / (112589 - w))), 1e-15);
  EXPECT_EQ(s(112589), 0.0);
  EXPECT_THROW(warmup_steps_for_epochs(-1, 10, 1), UserError);
}

TEST(Schedule, WarmupClampedBelowTotal) {
  WarmupCosine s(1.0, 10, 50);  // warm-up longer than the run
  EXPECT_EQ(s.warmup_steps(), 8.0);
  EXPECT_DOUBLE_EQ(s(8), 1.0);
  EXPECT_EQ(s(9), 0.0);
  WarmupCosine two(1.0, 2, 5);
  EXPECT_EQ(two(0), 1.0);  // W clamped to 0
  EXPECT_EQ(two(1), 0.0);
  WarmupCosine one(0.3, 1, 5);
  EXPECT_EQ(one(0), 0.3);  // a one-step run uses the peak LR
}

TEST(Schedule, BadScheduleInput) {
  EXPECT_THROW(WarmupCosine(1.0, 0, 0), UserError);
  EXPECT_THROW(WarmupCosine(-1.0, 10, 0), UserError);
  EXPECT_THROW(WarmupCosine(1.0, 10, -1), UserError);
  EXPECT_THROW(WarmupCosine(std::nan(""), 10, 0), UserError);
}

}  // namespace
}  // namespace nfscale::optim
