// test_agc.cpp - Adaptive Gradient Clipping against a hand computation: conv, linear, vector and scalar units,
// the weight-norm eps floor, the gradient-norm floor, the no-clip branch (bit-identical) and bad options.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nfscale/optim/agc.h"
#include "nfscale/util/error.h"
#include "optim_test_util.h"

namespace nfscale::optim {
namespace {

using test::agc_reference;
using test::bit_equal;
using test::randn_double;

TEST(Agc, ConvPerOutputChannelWithEpsFloorAndNoClipUnit) {
  // W [3,2,2,2]: unit 0 normal weights + large grad (clipped), unit 1 tiny grad (not clipped),
  // unit 2 all-zero weights (||W|| floored to eps=1e-3 -> max_norm 1e-5) with a grad of norm ~1e-3 (clipped).
  torch::Tensor w = randn_double({3, 2, 2, 2}, 1);
  w[2].zero_();
  torch::Tensor g = randn_double({3, 2, 2, 2}, 2);
  g[1].mul_(1e-4);
  g[2].mul_(1e-3 / g[2].norm().item<double>());
  const double w0 = w[0].norm().item<double>();
  const torch::Tensor g_before = g.clone();

  int64_t ref_clipped = 0;
  torch::Tensor expected = agc_reference(g, w, 0.01, 1e-3, 1e-6, &ref_clipped);
  AgcStats st = agc_clip_(g, w);

  EXPECT_EQ(st.units_total, 3);
  EXPECT_EQ(st.units_clipped, 2);
  EXPECT_EQ(ref_clipped, 2);
  EXPECT_TRUE(torch::allclose(g, expected, 1e-14, 0));
  // Clipped units have norm exactly max_norm (up to rounding); the zero-weight unit uses the eps floor.
  EXPECT_NEAR(g[0].norm().item<double>(), 0.01 * w0, 1e-15);
  EXPECT_NEAR(g[2].norm().item<double>(), 0.01 * 1e-3, 1e-18);
  // The unclipped unit is untouched, bit for bit; the direction of clipped units is kept.
  EXPECT_TRUE(bit_equal(g[1], g_before[1]));
  EXPECT_NEAR(torch::cosine_similarity(g[0].flatten(), g_before[0].flatten(), 0).item<double>(), 1.0, 1e-14);
  EXPECT_DOUBLE_EQ(st.fraction(), 2.0 / 3.0);
}

TEST(Agc, LinearPerOutputUnit) {
  torch::Tensor w = randn_double({4, 3}, 3);
  torch::Tensor g = randn_double({4, 3}, 4, 0.02);  // ~0.035 per unit vs max ~0.017: mixed clipping
  g[3].mul_(1e-3);                                  // surely below the threshold
  int64_t ref_clipped = 0;
  torch::Tensor expected = agc_reference(g, w, 0.01, 1e-3, 1e-6, &ref_clipped);
  AgcStats st = agc_clip_(g, w);
  EXPECT_EQ(st.units_total, 4);
  EXPECT_EQ(st.units_clipped, ref_clipped);
  EXPECT_GE(ref_clipped, 1);
  EXPECT_LE(ref_clipped, 3);
  EXPECT_TRUE(torch::allclose(g, expected, 1e-14, 0));
  // Per-unit (not whole-tensor) clipping: every row respects its own bound.
  for (int64_t o = 0; o < 4; ++o)
    EXPECT_LE(g[o].norm().item<double>(), 0.01 * w[o].norm().item<double>() * (1 + 1e-12) + 1e-300);
}

TEST(Agc, VectorAndScalarAreOneUnit) {
  torch::Tensor w = randn_double({5}, 5);
  torch::Tensor g = randn_double({5}, 6);
  const double wn = w.norm().item<double>();
  torch::Tensor expected = agc_reference(g, w);
  AgcStats st = agc_clip_(g, w);
  EXPECT_EQ(st.units_total, 1);
  EXPECT_EQ(st.units_clipped, 1);
  EXPECT_TRUE(torch::allclose(g, expected, 1e-14, 0));
  EXPECT_NEAR(g.norm().item<double>(), 0.01 * wn, 1e-15);

  // Scalar skip_gain initialised to 0: max_norm = 0.01 * 1e-3; grad 0.5 -> 1e-5 with the sign kept.
  torch::Tensor s = torch::zeros({}, torch::kDouble);
  torch::Tensor sg = torch::full({}, -0.5, torch::kDouble);
  st = agc_clip_(sg, s);
  EXPECT_EQ(st.units_total, 1);
  EXPECT_DOUBLE_EQ(sg.item<double>(), -1e-5);

  // Scalar below threshold: unchanged.
  torch::Tensor s2 = torch::full({}, 2.0, torch::kDouble);
  torch::Tensor sg2 = torch::full({}, 0.019, torch::kDouble);
  st = agc_clip_(sg2, s2);
  EXPECT_EQ(st.units_clipped, 0);
  EXPECT_EQ(sg2.item<double>(), 0.019);
}

TEST(Agc, OfficialSqueezeRuleForDegenerateShapes) {
  // [O,1,1,1] and [1,I] squeeze to vectors: the official code treats them as one unit.
  EXPECT_TRUE(agc_whole_tensor(torch::zeros({4, 1, 1, 1})));
  EXPECT_TRUE(agc_whole_tensor(torch::zeros({1, 7})));
  EXPECT_FALSE(agc_whole_tensor(torch::zeros({2, 3, 1, 1})));
  EXPECT_EQ(agc_unit_count(torch::zeros({2, 3, 1, 1})), 2);
  EXPECT_EQ(agc_unit_count(torch::zeros({})), 1);
  torch::Tensor w = randn_double({4, 1, 1, 1}, 7);
  torch::Tensor g = randn_double({4, 1, 1, 1}, 8);
  const double wn = w.norm().item<double>();
  agc_clip_(g, w);
  EXPECT_NEAR(g.norm().item<double>(), 0.01 * wn, 1e-15);
  EXPECT_EQ(unitwise_norm(torch::ones({2, 3, 2, 2}, torch::kDouble)).sizes(), (std::vector<int64_t>{2, 1, 1, 1}));
}

TEST(Agc, GradientNormFloorBranch) {
  // The 1e-6 floor is reachable only when max_norm < 1e-6: clip 1e-4 on a zero weight gives max_norm 1e-7.
  // A grad of norm 5e-7 is clipped with scale 1e-7 / max(5e-7, 1e-6) = 0.1 (not 1e-7 / 5e-7 = 0.2).
  AgcOptions opt;
  opt.clip = 1e-4;
  torch::Tensor w = torch::zeros({3}, torch::kDouble);
  torch::Tensor g = torch::tensor({3e-7, 4e-7, 0.0}, torch::kDouble);  // norm 5e-7
  torch::Tensor expected = g * 0.1;
  AgcStats st = agc_clip_(g, w, opt);
  EXPECT_EQ(st.units_clipped, 1);
  EXPECT_TRUE(torch::allclose(g, expected, 1e-14, 0));
  EXPECT_TRUE(torch::allclose(g, agc_reference(torch::tensor({3e-7, 4e-7, 0.0}, torch::kDouble), w, 1e-4), 1e-14, 0));
}

TEST(Agc, ZeroGradientIsNotClipped) {
  torch::Tensor w = torch::zeros({2, 3}, torch::kDouble);
  torch::Tensor g = torch::zeros({2, 3}, torch::kDouble);
  AgcStats st = agc_clip_(g, w);
  EXPECT_EQ(st.units_clipped, 0);
  EXPECT_EQ(g.abs().sum().item<double>(), 0.0);
}

TEST(Agc, BadOptionsThrowUserError) {
  AgcOptions o;
  o.clip = 0;
  EXPECT_THROW(validate(o), UserError);
  o = {};
  o.eps = -1;
  EXPECT_THROW(validate(o), UserError);
  o = {};
  o.grad_floor = std::nan("");
  EXPECT_THROW(validate(o), UserError);
  EXPECT_NO_THROW(validate(AgcOptions{}));
}

}  // namespace
}  // namespace nfscale::optim
