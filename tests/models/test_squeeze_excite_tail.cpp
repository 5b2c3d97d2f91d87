// test_squeeze_excite_tail.cpp - the squeeze-excite gate + residual tail node (squeeze_excite_tail.h) against the
// unfused ATen composition in fp64 (values and every gradient, with and without a stochastic-depth mask, both
// layouts), finite differences in fp64, fp32 against the two-node path it replaces (forward bit for bit, gradients to
// rounding) at a mini-F3 shape on both GEMM routes, the route (switch, dtype, autocast), the NF block on and off, and
// bad inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/nfnet/nfnet.h"
#include "nfscale/models/pointwise_linear.h"
#include "nfscale/models/squeeze_excite_tail.h"
#include "nfscale/train/autocast.h"
#include "conv_test_util.h"
#include "models_test_util.h"

namespace nfscale::models {
namespace se_tail_test {  // named, not anonymous: the unity build joins this file with other tests

using test::FusedSwitch;
using test::max_abs;
using SeSwitch = test::RouteSwitch<set_squeeze_excite_tail>;  // the node's switch for a scope (on again after)

// The inputs of one node: shortcut, h [B,C,H,W]; SE weights; skip gain. Leaves with requires_grad.
struct Inputs {
  torch::Tensor sc, h, w0, b0, w1, b1, sg;
  std::vector<torch::Tensor> all() const { return {sc, h, w0, b0, w1, b1, sg}; }
};

Inputs make_inputs(int64_t B, int64_t C, int64_t H, int64_t W, torch::ScalarType dt, torch::MemoryFormat fmt,
                   uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t hid = C / 2;
  Inputs in;
  in.sc = torch::randn({B, C, H, W}, dt).contiguous(fmt).requires_grad_(true);
  in.h = torch::randn({B, C, H, W}, dt).contiguous(fmt).requires_grad_(true);
  in.w0 = (torch::randn({hid, C}, dt) * 0.5).requires_grad_(true);
  in.b0 = (torch::randn({hid}, dt) * 0.1).requires_grad_(true);
  in.w1 = (torch::randn({C, hid}, dt) * 0.5).requires_grad_(true);
  in.b1 = (torch::randn({C}, dt) * 0.1).requires_grad_(true);
  in.sg = torch::tensor(0.37, dt).requires_grad_(true);
  return in;
}

Inputs clone_inputs(const Inputs& a) {
  Inputs b;
  auto c = [](const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); };
  b.sc = c(a.sc); b.h = c(a.h); b.w0 = c(a.w0); b.b0 = c(a.b0); b.w1 = c(a.w1); b.b1 = c(a.b1); b.sg = c(a.sg);
  return b;
}

// The plain ATen composition the node stands for.
torch::Tensor composed(const Inputs& in, const torch::Tensor& mask, double alpha) {
  auto pooled = in.h.mean({2, 3});                                                  // [B, C]
  auto gate = torch::sigmoid(torch::linear(torch::relu(torch::linear(pooled, in.w0, in.b0)), in.w1, in.b1));
  auto br = in.h * (gate.unsqueeze(-1).unsqueeze(-1) * 2.0);
  if (mask.defined()) br = br * mask.view({-1, 1, 1, 1});
  return br * in.sg * alpha + in.sc;
}

torch::Tensor fused(const Inputs& in, const torch::Tensor& mask, double alpha) {
  return squeeze_excite_tail(in.sc, in.h, in.w0, in.b0, in.w1, in.b1, mask, in.sg, alpha);
}

// The two-node path the NF block took before: SqueezeExcite::gate's ops, then fused_residual_tail.
torch::Tensor two_nodes(const Inputs& in, const torch::Tensor& mask, double alpha) {
  auto pooled = in.h.sum({2, 3}) * (1.0 / static_cast<double>(in.h.size(2) * in.h.size(3)));
  auto gate = torch::sigmoid(pointwise_linear(torch::relu(pointwise_linear(pooled, in.w0, in.b0)), in.w1, in.b1));
  return fused_residual_tail(in.sc, in.h, gate, mask, in.sg, alpha);
}

TEST(SqueezeExciteTail, MatchesTheComposedOpsInDouble) {
  FusedSwitch fs(true);
  SeSwitch ss(true);
  for (auto fmt : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    for (bool with_mask : {false, true}) {
      SCOPED_TRACE(std::string(with_mask ? "mask" : "no mask") +
                   (fmt == torch::MemoryFormat::ChannelsLast ? " channels_last" : " nchw"));
      const Inputs a = make_inputs(4, 6, 5, 3, torch::kDouble, fmt, 11);
      const Inputs b = clone_inputs(a);
      auto mask = with_mask ? torch::tensor({1.0, 0.0, 1.0, 1.0}, torch::kDouble) : torch::Tensor();
      auto y1 = fused(a, mask, 0.2);
      auto y2 = composed(b, mask, 0.2);
      EXPECT_EQ(y1.strides(), a.h.strides());
      EXPECT_LT(max_abs(y1 - y2), 1e-14);
      auto g = torch::randn({4, 6, 5, 3}, torch::kDouble);
      (y1 * g).sum().backward();
      (y2 * g).sum().backward();
      const auto ga = a.all(), gb = b.all();
      const char* names[] = {"shortcut", "h", "w0", "b0", "w1", "b1", "skip_gain"};
      for (size_t i = 0; i < ga.size(); ++i) {
        ASSERT_TRUE(ga[i].grad().defined()) << names[i];
        EXPECT_LT(max_abs(ga[i].grad() - gb[i].grad()), 1e-12 * (1 + max_abs(gb[i].grad()))) << names[i];
      }
    }
  }
}

TEST(SqueezeExciteTail, FiniteDifferencesInDouble) {
  FusedSwitch fs(true);
  SeSwitch ss(true);
  const Inputs in = make_inputs(3, 4, 3, 2, torch::kDouble, torch::MemoryFormat::ChannelsLast, 12);
  auto mask = torch::tensor({1.0, 1.0, 0.0}, torch::kDouble);
  auto wout = torch::randn({3, 4, 3, 2}, torch::kDouble);
  (fused(in, mask, 0.3) * wout).sum().backward();
  torch::NoGradGuard ng;
  const auto loss = [&]() { return (fused(in, mask, 0.3) * wout).sum().item<double>(); };
  const double eps = 1e-6;
  const auto params = in.all();
  const char* names[] = {"shortcut", "h", "w0", "b0", "w1", "b1", "skip_gain"};
  for (size_t p = 0; p < params.size(); ++p) {
    // a flat view sharing the leaf's storage (channels_last maps through their NHWC order), and the gradient read in
    // the same order
    const bool cl = !params[p].is_contiguous();
    auto flat = cl ? params[p].detach().permute({0, 2, 3, 1}).view(-1) : params[p].detach().view(-1);
    auto grad = cl ? params[p].grad().permute({0, 2, 3, 1}).reshape(-1) : params[p].grad().reshape(-1);
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 7)) {
      const double v = flat[i].item<double>();
      flat[i] = v + eps;
      const double up = loss();
      flat[i] = v - eps;
      const double down = loss();
      flat[i] = v;
      EXPECT_NEAR((up - down) / (2 * eps), grad[i].item<double>(), 1e-7) << names[p] << " element " << i;
    }
  }
}

TEST(SqueezeExciteTail, Fp32ForwardEqualsTheTwoNodePathAndGradientsAgree) {
  // mini-F3's third stage (192 channels, 2x2 maps, batch 128: the SE GEMMs take oneDNN's sgemm) and a small shape
  // where they take ATen's (16 rows).
  FusedSwitch fs(true);
  SeSwitch ss(true);
  struct Case { int64_t B, C, H; };
  for (const Case c : {Case{128, 192, 2}, Case{16, 32, 4}}) {
    SCOPED_TRACE("B " + std::to_string(c.B) + " C " + std::to_string(c.C) + " onednn " +
                 std::to_string(pointwise_linear_uses_onednn(c.B, c.C, c.C / 2)));
    const Inputs a = make_inputs(c.B, c.C, c.H, c.H, torch::kFloat, torch::MemoryFormat::ChannelsLast, 13);
    const Inputs b = clone_inputs(a);
    auto mask = (torch::rand({c.B}) > 0.2).to(torch::kFloat);
    auto y1 = fused(a, mask, 0.2);
    auto y2 = two_nodes(b, mask, 0.2);
    EXPECT_TRUE(torch::equal(y1, y2)) << "max |diff| " << max_abs(y1 - y2);
    auto g = torch::randn_like(y1);
    (y1 * g).sum().backward();
    (y2 * g).sum().backward();
    const auto ga = a.all(), gb = b.all();
    const char* names[] = {"shortcut", "h", "w0", "b0", "w1", "b1", "skip_gain"};
    for (size_t i = 0; i < ga.size(); ++i)
      EXPECT_LT(max_abs(ga[i].grad() - gb[i].grad()), 1e-5 * (1 + max_abs(gb[i].grad()))) << names[i];
  }
}

TEST(SqueezeExciteTail, RouteFollowsTheSwitchDtypeAndAutocast) {
  FusedSwitch fs(true);
  auto x = torch::randn({2, 4, 3, 3});
  {
    SeSwitch ss(true);
    EXPECT_TRUE(squeeze_excite_tail_applies(x));
    EXPECT_TRUE(squeeze_excite_tail_applies(x.to(torch::kDouble)));
    EXPECT_FALSE(squeeze_excite_tail_applies(x.to(torch::kBFloat16)));
    EXPECT_FALSE(squeeze_excite_tail_applies(x.flatten(2)));
    train::AutocastScope autocast(true);
    EXPECT_FALSE(squeeze_excite_tail_applies(x));
  }
  {
    SeSwitch ss(false);
    EXPECT_FALSE(squeeze_excite_tail_applies(x));
  }
  SeSwitch ss(true);
  FusedSwitch off(false);
  EXPECT_FALSE(squeeze_excite_tail_applies(x)) << "the fused-ops switch turns the node off too";
}

TEST(SqueezeExciteTail, NfBlockGivesTheSameOutputWithTheNodeOnAndOff) {
  FusedSwitch fs(true);
  torch::manual_seed(14);
  NFBlockOptions o;
  o.in_channels = 32;
  o.out_channels = 32;
  o.bottleneck_width = 32;
  o.groups = 2;
  NFBlock block(o);
  block->eval();  // no stochastic depth draws
  {
    torch::NoGradGuard ng;
    block->skip_gain.fill_(0.7);  // skip_gain starts at 0, which would hide the branch
  }
  auto x = torch::randn({8, 32, 4, 4}).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::Tensor on, off;
  {
    SeSwitch ss(true);
    on = block->forward(x);
  }
  {
    SeSwitch ss(false);
    off = block->forward(x);
  }
  EXPECT_TRUE(torch::equal(on, off)) << "max |diff| " << max_abs(on - off);
}

TEST(SqueezeExciteTail, BadInputsNameTheOperand) {
  const Inputs in = make_inputs(2, 4, 3, 3, torch::kFloat, torch::MemoryFormat::Contiguous, 15);
  const auto expect_throw = [](const std::function<void()>& f, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << "no error for " << what;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("squeeze_excite_tail"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_throw([&] { squeeze_excite_tail(in.sc.flatten(2), in.h, in.w0, in.b0, in.w1, in.b1, {}, in.sg, 0.2); },
               "shortcut");
  expect_throw([&] { squeeze_excite_tail(in.sc, in.h, in.w1, in.b0, in.w1, in.b1, {}, in.sg, 0.2); }, "fc0");
  expect_throw([&] { squeeze_excite_tail(in.sc, in.h, in.w0, in.b0, in.w0, in.b1, {}, in.sg, 0.2); }, "fc1");
  expect_throw([&] { squeeze_excite_tail(in.sc, in.h, in.w0, in.b0, in.w1, in.b1, torch::ones({3}), in.sg, 0.2); },
               "mask");
  expect_throw([&] {
    squeeze_excite_tail(in.sc, in.h, in.w0.to(torch::kDouble), in.b0, in.w1, in.b1, {}, in.sg, 0.2);
  }, "dtype");
}

}  // namespace se_tail_test
}  // namespace nfscale::models
