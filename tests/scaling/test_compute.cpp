// test_compute.cpp - compute accounting: FLOP convention and TPU-v4 / local-seconds conversions against hand numbers.
#include <gtest/gtest.h>

#include "nfscale/scaling/compute.h"
#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

TEST(Compute, TrainingFlopsAreSixTimesForwardMacs) {
  // F0 at 224x224: ~9.48 GMACs forward -> 9.48e9 * 2 * 3 = 5.688e10 training FLOPs per image.
  EXPECT_DOUBLE_EQ(training_flops_per_example(9.48e9), 5.688e10);
  // One ImageNet epoch (1.281167M images) of F0: 5.688e10 * 1281167 FLOPs.
  EXPECT_DOUBLE_EQ(training_flops(9.48e9, 1281167), 5.688e10 * 1281167);
  EXPECT_DOUBLE_EQ(training_flops(9.48e9, 0), 0);
}

TEST(Compute, TpuV4CoreHoursByHand) {
  // Default: 137.5e12 peak per core x 0.4 = 5.5e13 FLOP/s; 1.98e20 FLOPs = 3.6e6 s = 1000 core-hours.
  EXPECT_DOUBLE_EQ(TpuV4Convention{}.effective_flops_per_core(), 5.5e13);
  EXPECT_NEAR(flops_to_tpu_v4_core_hours(1.98e20), 1000.0, 1e-9);
  EXPECT_NEAR(tpu_v4_core_hours_to_flops(1000.0), 1.98e20, 1e6);
  // Full utilisation halves the hours.
  TpuV4Convention full{kTpuV4CorePeakFlops, 1.0};
  EXPECT_NEAR(flops_to_tpu_v4_core_hours(1.98e20, full), 400.0, 1e-9);
  // Round trip with a custom convention.
  TpuV4Convention c{100e12, 0.25};
  EXPECT_NEAR(flops_to_tpu_v4_core_hours(tpu_v4_core_hours_to_flops(123.0, c), c), 123.0, 1e-9);
}

TEST(Compute, LocalSecondsByHand) {
  EXPECT_DOUBLE_EQ(flops_to_local_seconds(1e12, 1e10), 100.0);
  EXPECT_DOUBLE_EQ(local_seconds_to_flops(100.0, 1e10), 1e12);
}

TEST(Compute, BadInputsThrowUserError) {
  EXPECT_THROW(training_flops_per_example(0), UserError);
  EXPECT_THROW(training_flops(1e9, -1), UserError);
  EXPECT_THROW(flops_to_tpu_v4_core_hours(1e18, TpuV4Convention{kTpuV4CorePeakFlops, 0.0}), UserError);
  EXPECT_THROW(flops_to_tpu_v4_core_hours(1e18, TpuV4Convention{kTpuV4CorePeakFlops, 1.5}), UserError);
  EXPECT_THROW(flops_to_local_seconds(1e12, 0), UserError);
  EXPECT_THROW(tpu_v4_core_hours_to_flops(-1), UserError);
  try {
    flops_to_tpu_v4_core_hours(1e18, TpuV4Convention{kTpuV4CorePeakFlops, 2.0});
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("utilisation"), std::string::npos);
  }
}

}  // namespace
}  // namespace nfscale::scaling
