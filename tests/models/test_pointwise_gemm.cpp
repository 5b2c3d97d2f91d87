// test_pointwise_gemm.cpp - the GEMM route of 1x1 WSConv2d layers (layers.h: pointwise_gemm_max_pixels): taken
// exactly when documented (bf16 or bf16 autocast, or fp32 at one intra-op thread or on oneDNN's sgemm; channels_last, H*W <= the limit,
// fused ops on), and its output and every gradient are as accurate against an fp64 reference as the convolution
// route's (fp32: within fp32 rounding of fp64).
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers run share names with another test file's).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/models/onednn_sgemm.h"
#include "nfscale/models/pointwise_linear.h"
#include "nfscale/train/autocast.h"
#include "models_test_util.h"

namespace nfscale::models {
namespace {

using test::FusedSwitch;

// Restores the pixel limit on scope exit.
struct PixelLimit {
  int64_t saved = pointwise_gemm_max_pixels();
  explicit PixelLimit(int64_t v) { set_pointwise_gemm_max_pixels(v); }
  ~PixelLimit() { set_pointwise_gemm_max_pixels(saved); }
};

// Sets LibTorch's intra-op threads / the fp32 GEMM route for the scope.
struct Threads {
  int saved = at::get_num_threads();
  explicit Threads(int n) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(saved); }
};
struct Fp32Gemm {
  bool saved = pointwise_gemm_fp32();
  explicit Fp32Gemm(bool on) { set_pointwise_gemm_fp32(on); }
  ~Fp32Gemm() { set_pointwise_gemm_fp32(saved); }
};

struct Result {
  torch::Tensor y, dx, dw, dgain, dbias;  // fp64 copies
  std::string node;                       // name of y's autograd node
};

// Forward + backward of conv on x (fp32 leaf) with upstream gradient g, under bf16 autocast when asked.
Result run(WSConv2d& conv, const torch::Tensor& x, const torch::Tensor& g, bool autocast) {
  conv->zero_grad();
  auto xi = x.detach().clone(torch::MemoryFormat::Preserve).requires_grad_(true);
  torch::Tensor y;
  {
    train::AutocastScope ac(autocast);
    y = conv->forward(xi);  // [B, out, H, W]
  }
  Result r;
  r.node = y.grad_fn() ? y.grad_fn()->name() : "";
  y.backward(g.to(y.scalar_type()));
  r.y = y.detach().to(torch::kDouble);
  r.dx = xi.grad().to(torch::kDouble);
  r.dw = conv->weight.grad().to(torch::kDouble);
  r.dgain = conv->gain.grad().to(torch::kDouble);
  r.dbias = conv->bias.grad().to(torch::kDouble);
  return r;
}

double rel_err(const torch::Tensor& a, const torch::Tensor& ref) {
  return (a - ref).norm().item<double>() / (ref.norm().item<double>() + 1e-30);
}

TEST(PointwiseGemm, RouteIsTakenExactlyWhenDocumented) {
  torch::manual_seed(1);
  WSConv2d conv(16, 8, 1);
  auto x4 = to_channels_last(torch::randn({2, 16, 4, 4}));  // 16 pixels
  auto g4 = torch::randn({2, 8, 4, 4});
  PixelLimit limit(16);
  EXPECT_NE(run(conv, x4, g4, true).node.find("Permute"), std::string::npos);         // bf16 autocast, CL, 16 px
  {
    Threads one(1);
    EXPECT_NE(run(conv, x4, g4, false).node.find("Permute"), std::string::npos);      // fp32, one thread
    Fp32Gemm off(false);
    EXPECT_NE(run(conv, x4, g4, false).node.find("Convolution"), std::string::npos);  // fp32 route off
  }
  {
    Threads two(2);
    EXPECT_NE(run(conv, x4, g4, false).node.find("Convolution"), std::string::npos);  // fp32, two threads, 8 out
    // Two threads and a shape oneDNN's threaded sgemm takes (2048 rows, 16 -> 32): the GEMM route, where built.
    WSConv2d wide(16, 32, 1);
    auto xw = to_channels_last(torch::randn({128, 16, 4, 4}));
    const bool onednn = pointwise_linear_uses_onednn(128 * 16, 16, 32);
    EXPECT_EQ(onednn, onednn_sgemm_built());
    EXPECT_NE(run(wide, xw, torch::randn({128, 32, 4, 4}), false).node.find(onednn ? "Permute" : "Convolution"),
              std::string::npos);
  }
  EXPECT_NE(run(conv, x4.contiguous(), g4, true).node.find("Convolution"), std::string::npos);  // NCHW
  auto x5 = to_channels_last(torch::randn({2, 16, 5, 5}));                           // 25 pixels > 16
  EXPECT_NE(run(conv, x5, torch::randn({2, 8, 5, 5}), true).node.find("Convolution"), std::string::npos);
  WSConv2d k3(16, 8, 3);
  EXPECT_NE(run(k3, x4, g4, true).node.find("Convolution"), std::string::npos);        // 3x3 kernel
  {
    PixelLimit off(0);
    EXPECT_NE(run(conv, x4, g4, true).node.find("Convolution"), std::string::npos);    // disabled
  }
  {
    FusedSwitch off(false);
    EXPECT_NE(run(conv, x4, g4, true).node.find("Convolution"), std::string::npos);    // fused ops off
  }
  // bf16 tensors without autocast take the route too.
  WSConv2d b16(16, 8, 1);
  b16->to(torch::kBFloat16);
  auto xb = to_channels_last(torch::randn({2, 16, 4, 4}).to(torch::kBFloat16)).requires_grad_(true);
  auto yb = b16->forward(xb);  // [2, 8, 4, 4] bf16
  EXPECT_NE(std::string(yb.grad_fn()->name()).find("Permute"), std::string::npos);
  EXPECT_EQ(yb.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(yb.suggest_memory_format(), torch::MemoryFormat::ChannelsLast);
  {
    PixelLimit off(0);
    EXPECT_TRUE(torch::allclose(yb.to(torch::kFloat), b16->forward(xb).to(torch::kFloat), 2e-2, 2e-2));
  }
  // A wrong channel count gets the layer's own message on this route as on the conv route.
  EXPECT_THROW(run(conv, to_channels_last(torch::randn({2, 12, 4, 4})), g4, true), c10::Error);
}

TEST(PointwiseGemm, AsAccurateAsTheConvolutionAgainstFp64) {
  torch::manual_seed(2);
  for (auto shape : {std::vector<int64_t>{8, 96, 4, 4}, std::vector<int64_t>{4, 64, 2, 2},
                     std::vector<int64_t>{3, 32, 1, 1}}) {
    SCOPED_TRACE(std::to_string(shape[1]) + " ch, " + std::to_string(shape[2]) + " px");
    WSConv2d conv(shape[1], 48, 1);
    {
      torch::NoGradGuard ng;
      conv->gain.uniform_(0.5, 1.5);
      conv->bias.normal_(0.0, 0.1);
    }
    // Inputs exactly representable in bf16, so both routes and the fp64 reference see the same numbers.
    auto x = to_channels_last(torch::randn(shape).to(torch::kBFloat16).to(torch::kFloat));
    auto g = torch::randn({shape[0], 48, shape[2], shape[3]}).to(torch::kBFloat16).to(torch::kFloat);
    Result gemm, conv_route;
    {
      PixelLimit on(64);
      gemm = run(conv, x, g, true);
    }
    {
      PixelLimit off(0);
      conv_route = run(conv, x, g, true);
    }
    ASSERT_NE(gemm.node.find("Permute"), std::string::npos);
    ASSERT_NE(conv_route.node.find("Convolution"), std::string::npos);
    EXPECT_EQ(gemm.y.sizes(), conv_route.y.sizes());
    EXPECT_EQ(gemm.dx.sizes(), conv_route.dx.sizes());
    // fp64 reference: the same module in double precision.
    WSConv2d ref(shape[1], 48, 1);
    {
      torch::NoGradGuard ng;
      ref->to(torch::kDouble);
      ref->weight.copy_(conv->weight);
      ref->gain.copy_(conv->gain);
      ref->bias.copy_(conv->bias);
    }
    auto xd = x.to(torch::kDouble).requires_grad_(true);
    auto yd = ref->forward(xd);
    yd.backward(g.to(torch::kDouble));
    const std::pair<const char*, std::pair<torch::Tensor, torch::Tensor>> pairs[] = {
        {"y", {gemm.y, conv_route.y}}, {"dx", {gemm.dx, conv_route.dx}}};
    const torch::Tensor refs[] = {yd.detach(), xd.grad()};
    for (int i = 0; i < 2; ++i) {
      const double e_gemm = rel_err(pairs[i].second.first, refs[i]);
      const double e_conv = rel_err(pairs[i].second.second, refs[i]);
      EXPECT_LT(e_gemm, 1.5 * e_conv + 1e-3) << pairs[i].first << ": gemm " << e_gemm << " conv " << e_conv;
      EXPECT_LT(e_gemm, 2e-2) << pairs[i].first;
    }
    const torch::Tensor grads_gemm[] = {gemm.dw, gemm.dgain, gemm.dbias};
    const torch::Tensor grads_conv[] = {conv_route.dw, conv_route.dgain, conv_route.dbias};
    const torch::Tensor grads_ref[] = {ref->weight.grad(), ref->gain.grad(), ref->bias.grad()};
    const char* names[] = {"dw", "dgain", "dbias"};
    for (int i = 0; i < 3; ++i) {
      const double e_gemm = rel_err(grads_gemm[i], grads_ref[i]), e_conv = rel_err(grads_conv[i], grads_ref[i]);
      EXPECT_LT(e_gemm, 1.5 * e_conv + 1e-3) << names[i] << ": gemm " << e_gemm << " conv " << e_conv;
      EXPECT_LT(e_gemm, 2e-2) << names[i];
    }
  }
}

TEST(PointwiseGemm, Fp32RouteMatchesFp64) {
  Threads one(1);
  Fp32Gemm on(true);
  torch::manual_seed(3);
  WSConv2d conv(96, 48, 1), ref(96, 48, 1);
  {
    torch::NoGradGuard ng;
    conv->bias.normal_(0.0, 0.1);
    ref->to(torch::kDouble);
    ref->weight.copy_(conv->weight);
    ref->bias.copy_(conv->bias);
  }
  auto x = to_channels_last(torch::randn({8, 96, 4, 4}));
  auto g = torch::randn({8, 48, 4, 4});
  const Result r = run(conv, x, g, false);
  ASSERT_NE(r.node.find("Permute"), std::string::npos);
  auto xd = x.to(torch::kDouble).requires_grad_(true);
  ref->forward(xd).backward(g.to(torch::kDouble));
  auto yd = ref->forward(x.to(torch::kDouble)).detach();
  EXPECT_LT(rel_err(r.y, yd), 1e-6);
  EXPECT_LT(rel_err(r.dx, xd.grad()), 1e-6);
  EXPECT_LT(rel_err(r.dw, ref->weight.grad()), 1e-5);
  EXPECT_LT(rel_err(r.dgain, ref->gain.grad()), 1e-5);
  EXPECT_LT(rel_err(r.dbias, ref->bias.grad()), 1e-6);
}

}  // namespace
}  // namespace nfscale::models
