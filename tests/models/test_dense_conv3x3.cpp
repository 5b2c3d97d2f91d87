// test_dense_conv3x3.cpp - the direct dense small-channel 3x3 convolution (models/dense_conv3x3.h), strides 1 and 2:
// its fp64 loops equal ATen's conv2d (output and all three gradients); every ISA's fp32 kernels are within fp32
// rounding of ATen in fp64 (channel counts and map widths hitting every register block and vector tail, even and odd
// extents: both stride-2 paddings); the ISA variants agree
// and repeat bit for bit; WSConv2d takes the route exactly when documented and both routes agree; the switches (set_*,
// NFSCALE_DENSE_CONV3X3=0, the fused ops) give the ATen path; bad input throws.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "nfscale/models/dense_conv3x3.h"
#include "nfscale/models/fused_ops.h"
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

using ForceIsa = test::ForceIsa<force_dense_conv3x3_isa>;
using DenseSwitch = test::RouteSwitch<set_dense_conv3x3_kernels>;

struct Geometry {
  int64_t B, C, O, H, W, stride;
  int64_t Ho() const { return same_padding(H, 3, stride).out; }
  int64_t Wo() const { return same_padding(W, 3, stride).out; }
};
std::string describe(const Geometry& g) {
  return std::to_string(g.B) + "x" + std::to_string(g.C) + "->" + std::to_string(g.O) + " " + std::to_string(g.H) +
         "x" + std::to_string(g.W) + " s" + std::to_string(g.stride);
}

struct Grads {
  torch::Tensor y, dx, dw, db;
};

// y and gradients (fp64 copies) of loss = sum(y * gy) through dense_conv3x3 or ATen's conv2d on SAME-padded x.
Grads run(const Geometry& g, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0,
          const torch::Tensor& gy, bool direct) {
  auto x = x0.detach().clone().contiguous(kCL).requires_grad_(true);  // [B, C, H, W]
  auto w = w0.detach().clone().requires_grad_(true);                  // [O, C, 3, 3]
  auto b = b0.detach().clone().requires_grad_(true);                  // [O]
  torch::Tensor y;                                                    // [B, O, Ho, Wo]
  if (direct) {
    y = dense_conv3x3(x, w, b, g.stride);
  } else {
    const SamePad ph = same_padding(g.H, 3, g.stride), pw = same_padding(g.W, 3, g.stride);
    auto xp = torch::constant_pad_nd(x, {pw.before, pw.after, ph.before, ph.after}, 0.0);
    y = torch::conv2d(xp, w, b, g.stride);
  }
  (y * gy.to(y.scalar_type())).sum().backward();
  return {y.detach().to(torch::kDouble), x.grad().to(torch::kDouble), w.grad().to(torch::kDouble),
          b.grad().to(torch::kDouble)};
}

// The ladder's shapes (stride 1: 8 -> 8 at 16x16, 4 -> 4 at 8x8; stride 2: 1 -> 8 at 32x32, 8 -> 16 at 16x16) and odd
// ones: every output-channel block (8, 4, 2, 1), odd weight-gradient pairs, map widths from 3 to 16 (vector tails), odd
// extents (stride 2 pads before), odd batches.
const std::vector<Geometry> kGeometries = {
    {2, 8, 8, 16, 16, 1}, {5, 4, 4, 8, 8, 1},   {3, 5, 15, 7, 11, 1}, {2, 3, 1, 3, 5, 1},  {1, 16, 13, 4, 16, 1},
    {2, 1, 8, 32, 32, 2}, {3, 8, 16, 16, 16, 2}, {2, 8, 4, 9, 7, 2},  {2, 3, 5, 6, 11, 2}};

TEST(DenseConv3x3, Fp64EqualsAtenConvolution) {
  for (const auto& g : kGeometries) {
    torch::manual_seed(g.B * 100 + g.H);
    auto x = torch::randn({g.B, g.C, g.H, g.W}, torch::kDouble);
    auto w = torch::randn({g.O, g.C, 3, 3}, torch::kDouble);
    auto b = torch::randn({g.O}, torch::kDouble);
    auto gy = torch::randn({g.B, g.O, g.Ho(), g.Wo()}, torch::kDouble);
    const Grads d = run(g, x, w, b, gy, true), a = run(g, x, w, b, gy, false);
    EXPECT_TRUE(d.y.is_contiguous(kCL));
    EXPECT_LT(rel(d.y, a.y), 1e-13) << describe(g);
    EXPECT_LT(rel(d.dx, a.dx), 1e-13) << describe(g);
    EXPECT_LT(rel(d.dw, a.dw), 1e-13) << describe(g);
    EXPECT_LT(rel(d.db, a.db), 1e-13) << describe(g);
  }
}

TEST(DenseConv3x3, EveryIsaFp32WithinRoundingOfFp64) {
  for (const auto& isa : test::isas_this_cpu_runs()) {
    ForceIsa force(isa);
    EXPECT_EQ(dense_conv3x3_isa(), isa);
    EXPECT_LE(dense_conv3x3_self_check_error(isa), 1.0) << isa;
    for (const auto& g : kGeometries) {
      torch::manual_seed(g.B * 10 + g.W);
      auto x = torch::randn({g.B, g.C, g.H, g.W}, torch::kDouble);
      auto w = torch::randn({g.O, g.C, 3, 3}, torch::kDouble) * 0.1;
      auto b = torch::randn({g.O}, torch::kDouble);
      auto gy = torch::randn({g.B, g.O, g.Ho(), g.Wo()}, torch::kDouble);
      const auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat); };
      const Grads k = run(g, f(x), f(w), f(b), gy, true);
      // reference: ATen in fp64 on the fp32-rounded inputs
      const auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat).to(torch::kDouble); };
      const Grads r = run(g, d(x), d(w), d(b), d(gy), false);
      const std::string at = isa + " " + describe(g);
      EXPECT_LT(rel(k.y, r.y), 2e-6) << at;
      EXPECT_LT(rel(k.dx, r.dx), 2e-6) << at;
      EXPECT_LT(rel(k.dw, r.dw), 2e-6) << at;
      EXPECT_LT(rel(k.db, r.db), 2e-6) << at;
    }
  }
}

TEST(DenseConv3x3, IsaVariantsAgreeAndRunDeterministically) {
  torch::manual_seed(3);
  const Geometry g{7, 8, 8, 16, 16, 1};
  auto x = torch::randn({7, 8, 16, 16}), w = torch::randn({8, 8, 3, 3}), b = torch::randn({8});
  auto gy = torch::randn({7, 8, 16, 16});
  Grads first;
  for (const auto& isa : test::isas_this_cpu_runs()) {
    ForceIsa force(isa);
    const Grads a = run(g, x, w, b, gy, true), a2 = run(g, x, w, b, gy, true);
    EXPECT_TRUE(torch::equal(a.y, a2.y) && torch::equal(a.dx, a2.dx) && torch::equal(a.dw, a2.dw) &&
                torch::equal(a.db, a2.db))
        << isa;
    if (!first.y.defined()) first = a;
    EXPECT_LT(rel(a.y, first.y), 1e-6) << isa;
    EXPECT_LT(rel(a.dx, first.dx), 1e-6) << isa;
    EXPECT_LT(rel(a.dw, first.dw), 1e-6) << isa;
  }
}

bool direct(const std::string& node) { return node.find("DenseConv3x3") != std::string::npos; }

TEST(DenseConv3x3, WSConvRouteIsTakenExactlyWhenDocumented) {
  FusedSwitch fused(true);
  DenseSwitch on(true);
  torch::manual_seed(2);
  WSConv2d stem(8, 8, 3), stage(16, 16, 3), four(4, 4, 3), narrow(8, 4, 3), widen(8, 16, 3), strided(8, 8, 3, 2),
      stem0(1, 8, 3, 2), exit16(8, 16, 3, 2), grouped(8, 8, 3, 1, 2), pw(8, 8, 1);
  auto x8 = to_channels_last(torch::randn({2, 8, 16, 16}));
  EXPECT_TRUE(direct(node_of(stem, x8)));                                                   // the stem's 8 -> 8
  EXPECT_TRUE(direct(node_of(four, to_channels_last(torch::randn({2, 4, 8, 8})))));         // nano-F0 stage 1
  EXPECT_TRUE(direct(node_of(stem, to_channels_last(torch::randn({2, 8, 8, 8})))));         // micro-F0 stage 1
  EXPECT_TRUE(direct(node_of(stem, to_channels_last(torch::randn({2, 8, 4, 4})))));         // nano-F0 stage 2
  EXPECT_TRUE(direct(node_of(narrow, x8)));                                                 // in != out is fine
  {
    WSConv2d s64(8, 8, 3);
    s64->to(torch::kDouble);
    EXPECT_TRUE(direct(node_of(s64, x8.to(torch::kDouble).contiguous(kCL))));  // fp64 loops
  }
  EXPECT_FALSE(direct(node_of(stem, x8.contiguous())));                                     // NCHW
  EXPECT_TRUE(direct(node_of(strided, x8)));                                                // micro's stem exit
  EXPECT_TRUE(direct(node_of(stem0, to_channels_last(torch::randn({2, 1, 32, 32})))));     // the stem's first conv
  EXPECT_FALSE(direct(node_of(exit16, x8)));                                                // mini's: 16 out, oneDNN
  EXPECT_FALSE(direct(node_of(strided, to_channels_last(torch::randn({2, 8, 4, 4})))));     // stride 2, 4x4 map
  EXPECT_FALSE(direct(node_of(grouped, x8)));                                               // 2 groups
  EXPECT_FALSE(direct(node_of(stage, to_channels_last(torch::randn({2, 16, 8, 8})))));      // 16 channels: oneDNN
  EXPECT_FALSE(direct(node_of(widen, x8)));                                                 // 16 out
  EXPECT_FALSE(direct(node_of(pw, x8)));                                                    // 1x1
  EXPECT_FALSE(direct(node_of(stem, to_channels_last(torch::randn({2, 8, 3, 8})))));        // 3 rows
  EXPECT_FALSE(direct(node_of(stem, to_channels_last(torch::randn({2, 8, 32, 32})))));      // 32x32 map
  EXPECT_FALSE(direct(node_of(stem, x8, /*autocast=*/true)));  // bf16 autocast: oneDNN's bf16 conv
  {
    DenseSwitch off(false);
    EXPECT_FALSE(dense_conv3x3_kernels_enabled());
    EXPECT_FALSE(direct(node_of(stem, x8)));
  }
  {
    FusedSwitch all_off(false);
    EXPECT_FALSE(dense_conv3x3_kernels_enabled());
    EXPECT_FALSE(direct(node_of(stem, x8)));
  }
}

// Switch on and off through WSConv2d (weight standardisation included) in fp64: the same output and gradients of x,
// weight, gain and bias; with the switch off the ATen convolution runs.
TEST(DenseConv3x3, WSConvBothRoutesGiveTheSameOutputAndGradients) {
  FusedSwitch fused(true);
  for (const Geometry& g : {Geometry{3, 8, 8, 16, 16, 1}, Geometry{2, 8, 4, 8, 9, 1}, Geometry{2, 4, 4, 5, 4, 1},
                            Geometry{2, 1, 8, 12, 9, 2}, Geometry{2, 8, 8, 8, 8, 2}}) {
    torch::manual_seed(8);
    WSConv2d conv(g.C, g.O, 3, g.stride);
    conv->to(torch::kDouble);
    auto x = to_channels_last(torch::randn({g.B, g.C, g.H, g.W}, torch::kDouble));
    std::vector<torch::Tensor> out[2];
    for (int route = 0; route < 2; ++route) {
      DenseSwitch sw(route == 0);
      conv->zero_grad();
      auto xi = x.clone().requires_grad_(true);
      auto y = conv->forward(xi);
      EXPECT_EQ(direct(y.grad_fn()->name()), route == 0) << describe(g);
      (y * y).sum().backward();
      out[route] = {y.detach(), xi.grad(), conv->weight.grad().clone(), conv->gain.grad().clone(),
                    conv->bias.grad().clone()};
    }
    for (size_t i = 0; i < out[0].size(); ++i) EXPECT_LT(rel(out[0][i], out[1][i]), 1e-12) << describe(g) << " #" << i;
  }
}

// NFSCALE_DENSE_CONV3X3=0 turns the route off (read once per process: checked in a fresh one).
TEST(DenseConv3x3DeathTest, EnvZeroTurnsTheRouteOff) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("NFSCALE_DENSE_CONV3X3", "0", 1);
        set_fused_ops(true);
        WSConv2d stem(8, 8, 3);
        const bool taken = direct(node_of(stem, to_channels_last(torch::randn({1, 8, 16, 16}))));
        std::exit(!dense_conv3x3_kernels_enabled() && !taken ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST(DenseConv3x3, BadInputThrows) {
  EXPECT_THROW(force_dense_conv3x3_isa("avx9000"), UserError);
  EXPECT_THROW(dense_conv3x3_self_check_error("sse9"), UserError);
  auto x = torch::randn({1, 8, 5, 5}), w = torch::randn({4, 8, 3, 3}), b = torch::zeros({4});
  EXPECT_NO_THROW(dense_conv3x3(x, w, b, 1));
  EXPECT_NO_THROW(dense_conv3x3(x, w, b, 2));
  EXPECT_THROW(dense_conv3x3(x, w, b, 3), c10::Error);                                     // stride 3
  EXPECT_THROW(dense_conv3x3(torch::randn({8, 5, 5}), w, b, 1), c10::Error);               // not 4-d
  EXPECT_THROW(dense_conv3x3(x, torch::randn({4, 6, 3, 3}), b, 1), c10::Error);            // channels differ
  EXPECT_THROW(dense_conv3x3(x, torch::randn({4, 8, 1, 1}), b, 1), c10::Error);            // not 3x3
  EXPECT_THROW(dense_conv3x3(x, w, torch::zeros({5}), 1), c10::Error);                     // bias size
  EXPECT_THROW(dense_conv3x3(x.to(torch::kDouble), w, b, 1), c10::Error);                  // mixed dtypes
  EXPECT_THROW(dense_conv3x3(x.to(torch::kBFloat16), w.to(torch::kBFloat16), b.to(torch::kBFloat16), 1), c10::Error);
  EXPECT_THROW(dense_conv3x3(torch::randn({0, 8, 5, 5}), w, b, 1), c10::Error);            // empty batch
}

}  // namespace
}  // namespace nfscale::models
