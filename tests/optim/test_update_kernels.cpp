// test_update_kernels.cpp - the fused SGD+AGC update's fp32 vector kernels (optim/update_kernels.h), every ISA build
// this CPU can run: the two squared norms against a double-precision loop, and the in-place update (every
// combination of weight decay, momentum and Nesterov) against the same formulas evaluated in double, at lengths that
// exercise the two-vector body, the one-vector loop and the scalar tail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "nfscale/optim/update_kernels.h"
#include "nfscale/util/cpu_features.h"

namespace nfscale::optim::update_kernels {
namespace {

std::vector<const KernelTable*> runnable_tables() {
  std::vector<const KernelTable*> t{&kernels_generic()};
  if (cpu_features().avx2) t.push_back(&kernels_avx2());
  if (cpu_features().avx512) t.push_back(&kernels_avx512());
  return t;
}

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

const int64_t kLengths[] = {1, 3, 15, 16, 17, 31, 32, 33, 47, 1000, 1152};

TEST(UpdateKernels, SquaredNormsMatchADoubleLoopOnEveryIsa) {
  for (const KernelTable* kt : runnable_tables()) {
    for (const int64_t n : kLengths) {
      const auto g = random_floats(n, uint32_t(n), 1e-3f), p = random_floats(n, uint32_t(n) + 7, 0.5f);
      double gr = 0, pr = 0;
      for (int64_t i = 0; i < n; ++i) gr += double(g[size_t(i)]) * g[size_t(i)], pr += double(p[size_t(i)]) * p[size_t(i)];
      double gs = -1, ps = -1;
      kt->sq_norms_f32(g.data(), p.data(), n, &gs, &ps);
      // Sums of n positive doubles in another order: relative error a few n * 2^-53.
      EXPECT_NEAR(gs, gr, 1e-13 * gr) << kt->isa << " n=" << n;
      EXPECT_NEAR(ps, pr, 1e-13 * pr) << kt->isa << " n=" << n;
      double gs2 = 0, ps2 = 0;  // the same input gives the same bits (the sum's order depends only on n)
      kt->sq_norms_f32(g.data(), p.data(), n, &gs2, &ps2);
      EXPECT_EQ(gs, gs2);
      EXPECT_EQ(ps, ps2);
    }
  }
}

TEST(UpdateKernels, UpdateMatchesTheFormulasInDoubleOnEveryIsaAndFlagSet) {
  for (const KernelTable* kt : runnable_tables()) {
    for (int flags = 0; flags < 8; ++flags) {
      UnitUpdate u;
      u.decay = flags & 4;
      u.mom = flags & 2;
      u.nesterov = flags & 1;
      u.scale = (flags % 3 == 0) ? 1.0f : 0.37f;  // clipped and unclipped units
      u.weight_decay = 2e-5f;
      u.momentum = 0.9f;
      u.neg_lr = -0.4f;
      for (const int64_t n : kLengths) {
        const uint32_t seed = uint32_t(100 * flags + n);
        auto p = random_floats(n, seed, 0.5f), g = random_floats(n, seed + 1, 1e-2f), b = random_floats(n, seed + 2, 1e-2f);
        const auto p0 = p, g0 = g, b0 = b;
        kt->update_f32(p.data(), g.data(), u.mom ? b.data() : nullptr, n, u);
        for (int64_t i = 0; i < n; ++i) {
          const size_t k = size_t(i);
          double gk = double(g0[k]) * u.scale;
          if (u.decay) gk += double(u.weight_decay) * p0[k];
          double step = gk, bk = b0[k];
          if (u.mom) {
            bk = gk + double(u.momentum) * b0[k];
            step = u.nesterov ? gk + double(u.momentum) * bk : bk;
          }
          const double pk = p0[k] + double(u.neg_lr) * step;
          const double gout = (u.mom && !u.nesterov) ? gk : step;
          const std::string where = std::string(kt->isa) + " flags=" + std::to_string(flags) + " n=" +
                                    std::to_string(n) + " i=" + std::to_string(i);
          // A few fp32 roundings of each term (with or without FMA contraction), relative to the terms' magnitude
          // (the sums can cancel).
          const double terms = std::abs(double(g0[k]) * u.scale) + std::abs(double(u.weight_decay) * p0[k]) +
                               std::abs(double(b0[k]));
          EXPECT_NEAR(p[k], pk, 2e-7 * std::abs(p0[k]) + 2e-6 * std::abs(double(u.neg_lr)) * terms) << where;
          EXPECT_NEAR(g[k], gout, 2e-6 * terms) << where;
          if (u.mom) EXPECT_NEAR(b[k], bk, 2e-6 * terms) << where;
          else EXPECT_EQ(b[k], b0[k]) << where;  // no momentum: the buffer is not touched
        }
      }
    }
  }
}

// A non-finite gradient stays non-finite (it must reach the optimiser's divergence check, not vanish).
TEST(UpdateKernels, NonFiniteGradientPropagatesToTheParameter) {
  for (const KernelTable* kt : runnable_tables()) {
    for (const int64_t n : {int64_t(5), int64_t(40)}) {
      auto p = random_floats(n, 3, 0.5f), g = random_floats(n, 4, 1e-2f), b = random_floats(n, 5, 1e-2f);
      g[size_t(n - 2)] = std::nanf("");
      UnitUpdate u;
      u.decay = u.mom = u.nesterov = true;
      u.weight_decay = 2e-5f, u.momentum = 0.9f, u.neg_lr = -0.1f;
      kt->update_f32(p.data(), g.data(), b.data(), n, u);
      EXPECT_TRUE(std::isnan(p[size_t(n - 2)])) << kt->isa;
      EXPECT_TRUE(std::isfinite(p[0])) << kt->isa;
    }
  }
}

TEST(UpdateKernels, TheSelectedTableIsTheWidestThisCpuRuns) {
  const std::string isa = update_kernel_table().isa;
  const char* force = std::getenv("NFSCALE_FUSED_ISA");
  if (force) GTEST_SKIP() << "NFSCALE_FUSED_ISA is set";
  EXPECT_EQ(isa, cpu_features().avx512 ? "avx512" : cpu_features().avx2 ? "avx2" : "generic");
}

}  // namespace
}  // namespace nfscale::optim::update_kernels
