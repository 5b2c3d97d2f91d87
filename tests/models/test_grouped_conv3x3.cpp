// test_grouped_conv3x3.cpp - the direct 3x3 / 16-channel-group convolution (models/grouped_conv3x3.h): its fp64 loops
// equal ATen's conv2d and finite differences; every ISA's fp32 kernels are within fp32 rounding of fp64 (forward and
// all three gradients, strides 1 and 2, SAME and asymmetric pads, every register-block size); WSConv2d takes the route
// exactly when documented (incl. the pixel limit) and both routes agree; the switch and bad input.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers Geometry, Grads, direct, kCL, kGeometries, run share names with another test file's).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/grouped_conv3x3.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/util/error.h"
#include "conv_test_util.h"
#include "models_test_util.h"

namespace nfscale::models {
namespace {

using test::FusedSwitch;
using test::node_of;
using test::rel;
constexpr auto kCL = torch::MemoryFormat::ChannelsLast;

using ForceIsa = test::ForceIsa<force_conv3x3_isa>;
using Conv3x3Switch = test::RouteSwitch<set_conv3x3_kernels>;

std::vector<std::string> isas() { return test::isas_this_cpu_runs(); }

struct Geometry {
  int64_t B, C, H, W, stride;
};
// SAME padding as WSConv2d computes it: stride 1 pads 1 / 1, stride 2 on even extents pads 0 / 1 (asymmetric).
struct Pads {
  int64_t top, left, oh, ow;
};
Pads same(const Geometry& g) {
  const SamePad ph = same_padding(g.H, 3, g.stride), pw = same_padding(g.W, 3, g.stride);
  return {ph.before, pw.before, ph.out, pw.out};
}

struct Grads {
  torch::Tensor y, dx, dw, db;
};

// y and gradients (fp64 copies) of loss = sum(y * gy) through grouped_conv3x3 or ATen's conv2d on SAME-padded x.
Grads run(const Geometry& g, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0,
          const torch::Tensor& gy, bool direct) {
  auto x = x0.detach().clone().contiguous(kCL).requires_grad_(true);
  auto w = w0.detach().clone().requires_grad_(true);
  auto b = b0.detach().clone().requires_grad_(true);
  const Pads p = same(g);
  torch::Tensor y;
  if (direct) {
    y = grouped_conv3x3(x, w, b, g.stride, p.top, p.left, p.oh, p.ow);
  } else {
    const SamePad ph = same_padding(g.H, 3, g.stride), pw = same_padding(g.W, 3, g.stride);
    auto xp = torch::constant_pad_nd(x, {pw.before, pw.after, ph.before, ph.after}, 0.0);
    const std::vector<int64_t> st = {g.stride, g.stride}, zero = {0, 0}, one = {1, 1};
    y = torch::conv2d(xp, w, b, st, zero, one, g.C / 16);
  }
  (y * gy.to(y.scalar_type())).sum().backward();
  return {y.detach().to(torch::kDouble), x.grad().to(torch::kDouble), w.grad().to(torch::kDouble),
          b.grad().to(torch::kDouble)};
}

// Strides 1 and 2, odd and even extents (2 and 1 pixel maps as in the ladder's last stages), 1-3 groups, batch sizes
// that exercise every register block (16, 8, 6, 4, 2, 1 images).
const std::vector<Geometry> kGeometries = {{3, 16, 5, 4, 1}, {19, 32, 2, 2, 1}, {7, 48, 1, 1, 1},
                                           {5, 32, 4, 4, 2}, {3, 16, 5, 7, 2},  {29, 16, 3, 3, 1}};

TEST(GroupedConv3x3, Fp64EqualsAtenConvolution) {
  for (const auto& g : kGeometries) {
    torch::manual_seed(g.B * 100 + g.H);
    const Pads p = same(g);
    auto x = torch::randn({g.B, g.C, g.H, g.W}, torch::kDouble);
    auto w = torch::randn({g.C, 16, 3, 3}, torch::kDouble);
    auto b = torch::randn({g.C}, torch::kDouble);
    auto gy = torch::randn({g.B, g.C, p.oh, p.ow}, torch::kDouble);
    const Grads d = run(g, x, w, b, gy, true), a = run(g, x, w, b, gy, false);
    EXPECT_TRUE(d.y.is_contiguous(kCL));
    EXPECT_LT(rel(d.y, a.y), 1e-13) << g.B << "x" << g.C << "x" << g.H << "x" << g.W << " s" << g.stride;
    EXPECT_LT(rel(d.dx, a.dx), 1e-13);
    EXPECT_LT(rel(d.dw, a.dw), 1e-13);
    EXPECT_LT(rel(d.db, a.db), 1e-13);
  }
}

TEST(GroupedConv3x3, FiniteDifferencesInDouble) {
  const Geometry g{2, 32, 3, 4, 2};
  const Pads p = same(g);
  torch::manual_seed(5);
  auto x = torch::randn({g.B, g.C, g.H, g.W}, torch::kDouble).contiguous(kCL).requires_grad_(true);
  auto w = torch::randn({g.C, 16, 3, 3}, torch::kDouble).requires_grad_(true);
  auto b = torch::randn({g.C}, torch::kDouble).requires_grad_(true);
  auto gy = torch::randn({g.B, g.C, p.oh, p.ow}, torch::kDouble);
  auto loss = [&] { return (grouped_conv3x3(x, w, b, g.stride, p.top, p.left, p.oh, p.ow) * gy).sum(); };
  loss().backward();
  const double h = 1e-6;
  for (torch::Tensor* t : {&x, &w, &b}) {
    // every tensor here is dense in its own format: its storage in memory order, and the gradient in the same order
    auto flat = t->detach().as_strided({t->numel()}, {1});
    auto gd = t->grad().contiguous(t->suggest_memory_format());
    auto gflat = gd.as_strided({gd.numel()}, {1});
    for (int64_t i = 0; i < flat.numel(); i += 7) {
      const double v = flat[i].item<double>();
      torch::NoGradGuard ng;
      flat[i] = v + h;
      const double lp = loss().item<double>();
      flat[i] = v - h;
      const double lm = loss().item<double>();
      flat[i] = v;
      EXPECT_NEAR(gflat[i].item<double>(), (lp - lm) / (2 * h), 1e-6) << "element " << i;
    }
  }
}

TEST(GroupedConv3x3, EveryIsaFp32WithinRoundingOfFp64) {
  for (const auto& isa : isas()) {
    ForceIsa force(isa);
    EXPECT_EQ(conv3x3_isa(), isa);
    EXPECT_LE(conv3x3_self_check_error(isa), 1.0) << isa;
    for (const auto& g : kGeometries) {
      torch::manual_seed(g.B * 10 + g.W);
      const Pads p = same(g);
      auto x = torch::randn({g.B, g.C, g.H, g.W}, torch::kDouble);
      auto w = torch::randn({g.C, 16, 3, 3}, torch::kDouble) * 0.1;
      auto b = torch::randn({g.C}, torch::kDouble);
      auto gy = torch::randn({g.B, g.C, p.oh, p.ow}, torch::kDouble);
      const auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat); };
      const Grads k = run(g, f(x), f(w), f(b), gy, true);
      // reference: ATen in fp64 on the fp32-rounded inputs
      const auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat).to(torch::kDouble); };
      const Grads r = run(g, d(x), d(w), d(b), d(gy), false);
      const std::string at = isa + " " + std::to_string(g.B) + "x" + std::to_string(g.C) + "x" + std::to_string(g.H) +
                             "x" + std::to_string(g.W) + " s" + std::to_string(g.stride);
      EXPECT_LT(rel(k.y, r.y), 2e-6) << at;
      EXPECT_LT(rel(k.dx, r.dx), 2e-6) << at;
      EXPECT_LT(rel(k.dw, r.dw), 2e-6) << at;
      EXPECT_LT(rel(k.db, r.db), 2e-6) << at;
    }
  }
}

TEST(GroupedConv3x3, IsaVariantsAgreeAndRunDeterministically) {
  const Geometry g{21, 32, 4, 4, 1};
  torch::manual_seed(3);
  auto x = torch::randn({g.B, g.C, g.H, g.W}), w = torch::randn({g.C, 16, 3, 3}), b = torch::randn({g.C});
  auto gy = torch::randn({g.B, g.C, 4, 4});
  Grads first;
  for (const auto& isa : isas()) {
    ForceIsa force(isa);
    const Grads a = run(g, x, w, b, gy, true), a2 = run(g, x, w, b, gy, true);
    EXPECT_TRUE(torch::equal(a.y, a2.y) && torch::equal(a.dx, a2.dx) && torch::equal(a.dw, a2.dw)) << isa;
    if (!first.y.defined()) first = a;
    EXPECT_LT(rel(a.y, first.y), 1e-6) << isa;
    EXPECT_LT(rel(a.dw, first.dw), 1e-6) << isa;
  }
}

bool direct(const std::string& node) { return node.find("GroupedConv3x3") != std::string::npos; }

TEST(GroupedConv3x3, WSConvRouteIsTakenExactlyWhenDocumented) {
  FusedSwitch fused(true);
  Conv3x3Switch on(true);
  torch::manual_seed(2);
  WSConv2d grouped(32, 32, 3, 1, 2), strided(32, 32, 3, 2, 2), dense16(16, 16, 3), pw(32, 32, 1),
      eight(32, 32, 3, 1, 4), widen(16, 32, 3);
  auto x32 = to_channels_last(torch::randn({2, 32, 4, 4})), x16 = to_channels_last(torch::randn({2, 16, 4, 4}));
  EXPECT_TRUE(direct(node_of(grouped, x32)));
  EXPECT_TRUE(direct(node_of(strided, x32)));
  EXPECT_TRUE(direct(node_of(dense16, x16)));                          // one 16-channel group
  {
    WSConv2d g64(32, 32, 3, 1, 2);
    g64->to(torch::kDouble);
    EXPECT_TRUE(direct(node_of(g64, x32.to(torch::kDouble).contiguous(kCL))));  // fp64 loops
  }
  EXPECT_FALSE(direct(node_of(grouped, x32.contiguous())));            // NCHW
  EXPECT_FALSE(direct(node_of(pw, x32)));                              // 1x1
  EXPECT_FALSE(direct(node_of(eight, x32)));                           // 8 channels per group
  EXPECT_FALSE(direct(node_of(widen, x16)));                           // in != out
  EXPECT_FALSE(direct(node_of(grouped, x32, /*autocast=*/true)));      // bf16 autocast: oneDNN's bf16 conv
  auto x8 = to_channels_last(torch::randn({1, 32, 8, 8}));
  EXPECT_TRUE(direct(node_of(strided, x8)));   // 8x8 -> 4x4: 16 output pixels
  EXPECT_FALSE(direct(node_of(grouped, x8)));  // 8x8 -> 8x8: 64 > kConv3x3MaxOutputPixels
  EXPECT_FALSE(direct(node_of(grouped, to_channels_last(torch::randn({1, 32, 4, 5})))));  // 20 > 16
  {
    Conv3x3Switch off(false);
    EXPECT_FALSE(direct(node_of(grouped, x32)));
  }
  {
    FusedSwitch all_off(false);
    EXPECT_FALSE(conv3x3_kernels_enabled());
    EXPECT_FALSE(direct(node_of(grouped, x32)));
  }
}

TEST(GroupedConv3x3, WSConvBothRoutesGiveTheSameOutputAndGradients) {
  FusedSwitch fused(true);
  for (int64_t stride : {1, 2}) {
    torch::manual_seed(8);
    WSConv2d conv(48, 48, 3, stride, 3);
    conv->to(torch::kDouble);
    auto x = to_channels_last(torch::randn({4, 48, 3, 5}, torch::kDouble));  // 15 / 6 output pixels
    std::vector<torch::Tensor> out[2];
    for (int route = 0; route < 2; ++route) {
      Conv3x3Switch sw(route == 0);
      conv->zero_grad();
      auto xi = x.clone().requires_grad_(true);
      auto y = conv->forward(xi);
      EXPECT_EQ(direct(y.grad_fn()->name()), route == 0);
      (y * y).sum().backward();
      out[route] = {y.detach(), xi.grad(), conv->weight.grad().clone(), conv->gain.grad().clone(),
                    conv->bias.grad().clone()};
    }
    for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LT(rel(out[0][i], out[1][i]), 1e-12) << "stride " << stride << " #" << i;
  }
}

TEST(GroupedConv3x3, BadInputThrows) {
  EXPECT_THROW(force_conv3x3_isa("avx9000"), UserError);
  EXPECT_THROW(conv3x3_self_check_error("sse9"), UserError);
  auto x = torch::randn({1, 24, 3, 3}), w = torch::randn({24, 16, 3, 3}), b = torch::zeros({24});
  EXPECT_THROW(grouped_conv3x3(x, w, b, 1, 1, 1, 3, 3), c10::Error);  // 24 channels: not 16 per group
  auto x16 = torch::randn({1, 16, 3, 3});
  EXPECT_THROW(grouped_conv3x3(x16, torch::randn({16, 8, 3, 3}), torch::zeros({16}), 1, 1, 1, 3, 3), c10::Error);
  EXPECT_THROW(grouped_conv3x3(x16.to(torch::kInt), torch::randn({16, 16, 3, 3}), torch::zeros({16}), 1, 1, 1, 3, 3),
               c10::Error);
  EXPECT_THROW(grouped_conv3x3(x16, torch::randn({16, 16, 3, 3}), torch::zeros({16}), 1, 1, 1, 9, 3), c10::Error);
}

}  // namespace
}  // namespace nfscale::models
