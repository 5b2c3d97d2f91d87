// test_pointwise_linear.cpp - the pointwise conv's GEMM on oneDNN's sgemm (models/pointwise_linear.h): output and
// the three gradients against ATen's linear in fp64 on the same fp32 values, bit-identical repeats, the route taken
// exactly where documented (fp32 CPU, no autocast, the measured shapes, the switch on), NFSCALE_ONEDNN_SGEMM=0 in a
// fresh process, and WSConv2d's 1x1 GEMM route giving the same numbers with the oneDNN GEMM on and off.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers Grads, run share names with another test file's).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/models/onednn_sgemm.h"
#include "nfscale/models/pointwise_linear.h"
#include "nfscale/train/autocast.h"

namespace nfscale::models {
namespace {

// Sets the oneDNN-sgemm switch for the scope; restores "on" (the default in a build that has it) afterwards.
struct SgemmSwitch {
  explicit SgemmSwitch(bool on) { set_onednn_sgemm(on); }
  ~SgemmSwitch() { set_onednn_sgemm(true); }
};

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  const auto d = a.to(torch::kDouble), e = b.to(torch::kDouble);
  return ((d - e).abs().max() / e.abs().max().clamp_min(1e-30)).item<double>();
}

struct Grads {
  torch::Tensor y, dx, dw, db;
};

// y = pointwise_linear(x, w, b) on leaf copies; the loss sum(y * g) gives dx, dw, db.
Grads run(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& g,
          bool aten) {
  auto xl = x.clone().requires_grad_(true), wl = w.clone().requires_grad_(true);
  auto bl = b.defined() ? b.clone().requires_grad_(true) : torch::Tensor();
  const auto y = aten ? torch::linear(xl, wl, bl) : pointwise_linear(xl, wl, bl);
  (y * g).sum().backward();
  return {y.detach(), xl.grad(), wl.grad(), bl.defined() ? bl.grad() : torch::Tensor()};
}

class PointwiseLinear : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn_sgemm_built()) GTEST_SKIP() << "this build has no oneDNN sgemm (libdnnl-dev); CI builds it";
    set_fused_ops(true);
  }
};

TEST_F(PointwiseLinear, OutputAndGradientsMatchFp64Linear) {
  torch::manual_seed(3);
  // [rows, in] -> out: the ladder's shapes (8x8 and 4x4 maps at batch 128 and 32, 16-192 channels), with and
  // without bias.
  const std::vector<std::array<int64_t, 3>> shapes = {{8192, 32, 16}, {2048, 16, 32}, {2048, 64, 96}, {512, 192, 96},
                                                      {128, 96, 192}};
  for (const auto& s : shapes)
    for (bool with_bias : {true, false}) {
      const auto x = torch::randn({s[0], s[1]}), w = torch::randn({s[2], s[1]}) * 0.2;
      const auto b = with_bias ? torch::randn({s[2]}) : torch::Tensor();
      const auto g = torch::randn({s[0], s[2]});
      ASSERT_TRUE(pointwise_linear_uses_onednn(x, w)) << s[0] << "x" << s[1] << "->" << s[2];
      const auto got = run(x, w, b, g, false);
      const auto ref = run(x.to(torch::kDouble), w.to(torch::kDouble), with_bias ? b.to(torch::kDouble) : b,
                           g.to(torch::kDouble), true);
      const double tol = 2e-6 * std::sqrt(static_cast<double>(std::max(s[0], s[1])));  // fp32 sums of up to M terms
      EXPECT_LT(rel(got.y, ref.y), tol) << s[0] << "x" << s[1] << "->" << s[2];
      EXPECT_LT(rel(got.dx, ref.dx), tol);
      EXPECT_LT(rel(got.dw, ref.dw), tol);
      if (with_bias) EXPECT_LT(rel(got.db, ref.db), tol);
      EXPECT_EQ(got.y.scalar_type(), torch::kFloat);
    }
}

TEST_F(PointwiseLinear, RepeatsAreBitIdentical) {
  torch::manual_seed(4);
  const auto x = torch::randn({2048, 48}), w = torch::randn({24 + 40, 48}), b = torch::randn({64});
  const auto g = torch::randn({2048, 64});
  const auto a = run(x, w, b, g, false), c = run(x, w, b, g, false);
  EXPECT_TRUE(torch::equal(a.y, c.y));
  EXPECT_TRUE(torch::equal(a.dx, c.dx));
  EXPECT_TRUE(torch::equal(a.dw, c.dw));
  EXPECT_TRUE(torch::equal(a.db, c.db));
}

TEST_F(PointwiseLinear, RouteIsTakenExactlyWhereDocumented) {
  const auto x = torch::randn({2048, 32}), w = torch::randn({16, 32});
  EXPECT_TRUE(pointwise_linear_uses_onednn(x, w));
  EXPECT_FALSE(pointwise_linear_uses_onednn(torch::randn({8192, 8}), torch::randn({4, 8})));      // < 16 channels
  EXPECT_FALSE(pointwise_linear_uses_onednn(torch::randn({512, 48}), torch::randn({24, 48})));    // few rows, < 64
  EXPECT_TRUE(pointwise_linear_uses_onednn(torch::randn({512, 96}), torch::randn({192, 96})));    // few rows, >= 64
  EXPECT_FALSE(pointwise_linear_uses_onednn(x.to(torch::kDouble), w.to(torch::kDouble)));        // fp64: ATen
  EXPECT_FALSE(pointwise_linear_uses_onednn(x.to(torch::kBFloat16), w.to(torch::kBFloat16)));    // bf16: ATen
  EXPECT_FALSE(pointwise_linear_uses_onednn(x, torch::randn({16, 31})));                          // mismatched
  {
    train::AutocastScope autocast(true);
    EXPECT_FALSE(pointwise_linear_uses_onednn(x, w));
  }
  {
    SgemmSwitch off(false);
    EXPECT_FALSE(pointwise_linear_uses_onednn(x, w));
  }
  set_fused_ops(false);
  EXPECT_FALSE(pointwise_linear_uses_onednn(x, w));
  set_fused_ops(true);
  EXPECT_TRUE(pointwise_linear_uses_onednn(x, w));
  // Off the route it is ATen's linear, exactly.
  const auto xs = torch::randn({300, 8}), ws = torch::randn({4, 8}), bs = torch::randn({4});
  EXPECT_TRUE(torch::equal(pointwise_linear(xs, ws, bs), torch::linear(xs, ws, bs)));
}

// A 1x1 WSConv2d on its GEMM route (channels_last, one thread, <= 64 pixels) gives the same output and gradients
// with the oneDNN GEMM on and off, within fp32 rounding.
TEST_F(PointwiseLinear, WsConvOneByOneAgreesWithTheOpenBlasGemm) {
  const int saved_threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::manual_seed(5);
  WSConv2d conv(32, 64, 1);
  const auto x = to_channels_last(torch::randn({64, 32, 8, 8}));
  const auto g = to_channels_last(torch::randn({64, 64, 8, 8}));
  std::vector<std::vector<torch::Tensor>> out;
  for (bool on : {true, false}) {
    SgemmSwitch sw(on);
    auto xl = x.clone().requires_grad_(true);
    conv->zero_grad();
    (conv(xl) * g).sum().backward();
    out.push_back({conv(x).detach(), xl.grad().clone(), conv->weight.grad().clone(), conv->bias.grad().clone()});
  }
  at::set_num_threads(saved_threads);
  for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LT(rel(out[0][i], out[1][i]), 1e-5) << "#" << i;
}

// The squeeze-excite layers' Dense GEMMs ([B, C] -> [B, C/2] -> [B, C]) take the route at the mini ladder's shapes
// (batch 128, 192 channels) and agree with torch::linear (OpenBLAS) in output and gradients.
TEST_F(PointwiseLinear, SqueezeExciteDenseTakesTheRouteAndAgreesWithLinear) {
  torch::manual_seed(6);
  SqueezeExcite se(192, 0.5);
  const auto x = torch::randn({128, 192, 2, 2});
  const auto g = torch::randn({128, 192, 2, 2});
  EXPECT_TRUE(pointwise_linear_uses_onednn(128, 192, 96));
  {
    auto h = torch::randn({128, 192}).requires_grad_(true);
    EXPECT_NE(std::string(se->fc0->forward(h).grad_fn()->name()).find("PointwiseLinear"), std::string::npos);
  }
  std::vector<std::vector<torch::Tensor>> out;
  for (bool on : {true, false}) {
    SgemmSwitch sw(on);
    auto xl = x.clone().requires_grad_(true);
    se->zero_grad();
    const auto y = se->forward(xl);  // [128, 192, 2, 2]
    (y * g).sum().backward();
    out.push_back({y.detach(), xl.grad().clone(), se->fc0->weight.grad().clone(), se->fc1->weight.grad().clone(),
                   se->fc1->bias.grad().clone()});
  }
  for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LT(rel(out[0][i], out[1][i]), 1e-5) << "#" << i;
}

// NFSCALE_ONEDNN_SGEMM=0 turns the route off (read once per process: checked in a fresh one).
TEST(PointwiseLinearDeathTest, EnvZeroTurnsTheRouteOff) {
  if (!onednn_sgemm_built()) GTEST_SKIP() << "this build has no oneDNN sgemm";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("NFSCALE_ONEDNN_SGEMM", "0", 1);
        set_fused_ops(true);
        const bool taken = pointwise_linear_uses_onednn(torch::randn({2048, 32}), torch::randn({16, 32}));
        std::exit(!onednn_sgemm_enabled() && !taken ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST(OnednnSgemm, BadShapesAreNamedErrors) {
  if (!onednn_sgemm_built()) {
    float a = 0, b = 0, c = 0;
    EXPECT_THROW(onednn_sgemm(false, false, 1, 1, 1, &a, 1, &b, 1, 0.0f, &c, 1), std::runtime_error);
    return;
  }
  std::vector<float> a(4, 1.0f), b(4, 1.0f), c(4, 0.0f);
  EXPECT_NO_THROW(onednn_sgemm(false, false, 2, 2, 2, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2));
  EXPECT_FLOAT_EQ(c[0], 2.0f);
  // lda smaller than K is invalid for a row-major A: oneDNN refuses it, and the message names the shape.
  try {
    onednn_sgemm(false, false, 2, 2, 2, a.data(), 1, b.data(), 2, 0.0f, c.data(), 2);
    ADD_FAILURE() << "no error for lda < K";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("K 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::models
