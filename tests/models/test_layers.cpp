// test_layers.cpp - NFNet building blocks against reference formulas: scaled WS, TF 'SAME' padding and pooling,
// finite-difference gradients in double precision, gamma-scaled activations, squeeze-excite, stochastic depth.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "nfscale/models/layers.h"
#include "nfscale/util/error.h"

namespace nfscale::models {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

// TensorFlow's documented 'SAME' rule (tf.nn.convolution docs), written independently of same_padding():
// pad_along = max(k - s, 0) if n % s == 0 else max(k - n % s, 0); pad_before = pad_along / 2.
std::pair<int64_t, int64_t> tf_same_pads(int64_t n, int64_t k, int64_t s) {
  const int64_t along = (n % s == 0) ? std::max<int64_t>(k - s, 0) : std::max<int64_t>(k - n % s, 0);
  return {along / 2, along - along / 2};
}

// Scaled WS by explicit per-channel loops (double).
torch::Tensor ws_reference(const torch::Tensor& w, const torch::Tensor& gain) {
  auto out = torch::empty_like(w);
  const int64_t O = w.size(0), n = w[0].numel();
  for (int64_t o = 0; o < O; ++o) {
    auto flat = w[o].reshape({-1});
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += flat[i].item<double>();
    mean /= n;
    for (int64_t i = 0; i < n; ++i) var += std::pow(flat[i].item<double>() - mean, 2);
    var /= n;
    const double scale = gain[o].item<double>() / std::sqrt(std::max(var * n, 1e-4));
    out[o] = (w[o] - mean) * scale;
  }
  return out;
}

TEST(Layers, SamePaddingMatchesTensorFlowRule) {
  for (int64_t n = 1; n <= 13; ++n) {
    for (int64_t k : {1, 2, 3, 5}) {
      for (int64_t s : {1, 2}) {
        const SamePad p = same_padding(n, k, s);
        const auto [before, after] = tf_same_pads(n, k, s);
        EXPECT_EQ(p.out, (n + s - 1) / s) << n << " " << k << " " << s;
        EXPECT_EQ(p.before, before) << n << " " << k << " " << s;
        EXPECT_EQ(p.after, after) << n << " " << k << " " << s;
      }
    }
  }
  // The asymmetric case the reference relies on: even input, 3x3, stride 2 pads 0 before and 1 after.
  const SamePad p = same_padding(8, 3, 2);
  EXPECT_EQ(p.before, 0);
  EXPECT_EQ(p.after, 1);
}

TEST(Layers, WSConvForwardEqualsReferenceFormula) {
  torch::manual_seed(3);
  for (int64_t n : {6, 7}) {            // even and odd extents
    for (int64_t stride : {1, 2}) {
      for (int64_t k : {1, 3}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " stride=" + std::to_string(stride) + " k=" + std::to_string(k));
        WSConv2d conv(4, 6, k, stride, 2);
        conv->to(torch::kFloat64);
        {
          torch::NoGradGuard g;
          conv->gain.uniform_(0.5, 1.5);
          conv->bias.uniform_(-0.5, 0.5);
        }
        auto x = torch::randn({2, 4, n, n}, kDouble);
        const auto [pb, pa] = tf_same_pads(n, k, stride);
        auto xp = torch::constant_pad_nd(x, {pb, pa, pb, pa}, 0.0);
        const std::vector<int64_t> st = {stride, stride};
        auto expected = torch::conv2d(xp, ws_reference(conv->weight.detach(), conv->gain.detach()),
                                      conv->bias.detach(), st, std::vector<int64_t>{0, 0},
                                      std::vector<int64_t>{1, 1}, 2);
        auto got = conv->forward(x);
        ASSERT_EQ(got.sizes(), expected.sizes());
        EXPECT_EQ(got.size(2), (n + stride - 1) / stride);
        EXPECT_TRUE(torch::allclose(got, expected, 1e-10, 1e-10));
      }
    }
  }
}

TEST(Layers, StandardizedWeightHasZeroMeanAndUnitFanInVariance) {
  torch::manual_seed(4);
  WSConv2d conv(8, 5, 3);
  auto w = conv->standardized_weight().to(torch::kFloat64);  // [5, 8, 3, 3]
  auto mean = w.mean({1, 2, 3});
  auto var = w.var({1, 2, 3}, false);
  EXPECT_LT(mean.abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(var * 72.0, torch::ones_like(var), 1e-4, 1e-4));
  // A (nearly) constant filter: var * fan_in < 1e-4, so the floor applies and w_hat = gain * (w - mean) / 0.01.
  conv->to(torch::kFloat64);
  {
    torch::NoGradGuard g;
    conv->weight[0].copy_(0.3 + 1e-4 * torch::randn({8, 3, 3}, kDouble));
    conv->gain[0].fill_(2.0);
  }
  auto w0 = conv->weight[0].detach();
  ASSERT_LT(w0.var(false).item<double>() * 72.0, 1e-4);
  auto w2 = conv->standardized_weight();
  EXPECT_TRUE(torch::allclose(w2[0], 2.0 * (w0 - w0.mean()) / 0.01, 1e-9, 1e-12));
  EXPECT_TRUE(torch::allclose(w2, ws_reference(conv->weight.detach(), conv->gain.detach()), 1e-9, 1e-12));
}

TEST(Layers, WSConvInitIsVarianceScalingFanIn) {
  torch::manual_seed(5);
  WSConv2d conv(64, 256, 3, 1, 4);  // fan_in = 16 * 9 = 144
  const double sd = conv->weight.std().item<double>();
  EXPECT_NEAR(sd, 1.0 / 12.0, 0.02 / 12.0 * 5);  // 36864 samples: sd of the sd estimate ~0.4%
  EXPECT_EQ(conv->gain.eq(1.0).all().item<bool>(), true);
  EXPECT_EQ(conv->bias.eq(0.0).all().item<bool>(), true);
}

// Central finite differences of L = sum(out * R) w.r.t. every element of `t` (double precision).
void check_gradient(const std::function<torch::Tensor()>& loss, torch::Tensor t, const torch::Tensor& analytic,
                    const std::string& what) {
  torch::NoGradGuard g;
  const double h = 1e-6;
  auto flat = t.view({-1});
  auto grad = analytic.reshape({-1});
  double max_err = 0;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double orig = flat[i].item<double>();
    flat[i] = orig + h;
    const double lp = loss().item<double>();
    flat[i] = orig - h;
    const double lm = loss().item<double>();
    flat[i] = orig;
    const double fd = (lp - lm) / (2 * h);
    max_err = std::max(max_err, std::abs(fd - grad[i].item<double>()) / std::max(1.0, std::abs(fd)));
  }
  EXPECT_LT(max_err, 1e-6) << what;
}

TEST(Layers, WSConvGradientsMatchFiniteDifferences) {
  torch::manual_seed(6);
  for (int64_t stride : {1, 2}) {
    WSConv2d conv(4, 6, 3, stride, 2);
    conv->to(torch::kFloat64);
    {
      torch::NoGradGuard g;
      conv->gain.uniform_(0.5, 1.5);
    }
    auto x = torch::randn({2, 4, 5, 6}, kDouble).requires_grad_(true);
    auto R = torch::randn({2, 6, (5 + stride - 1) / stride, (6 + stride - 1) / stride}, kDouble);
    auto loss = [&] { return (conv->forward(x) * R).sum(); };
    auto grads = torch::autograd::grad({loss()}, {x, conv->weight, conv->gain, conv->bias});
    check_gradient(loss, x, grads[0], "input, stride " + std::to_string(stride));
    check_gradient(loss, conv->weight, grads[1], "weight, stride " + std::to_string(stride));
    check_gradient(loss, conv->gain, grads[2], "gain, stride " + std::to_string(stride));
    check_gradient(loss, conv->bias, grads[3], "bias, stride " + std::to_string(stride));
  }
}

TEST(Layers, AvgPoolSameExcludesPadding) {
  auto x = torch::arange(9, kDouble).view({1, 1, 3, 3});  // [[0,1,2],[3,4,5],[6,7,8]]
  auto y = avg_pool_2x2_same(x);                           // [1,1,2,2]
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_DOUBLE_EQ(y[0][0][0][0].item<double>(), (0 + 1 + 3 + 4) / 4.0);
  EXPECT_DOUBLE_EQ(y[0][0][0][1].item<double>(), (2 + 5) / 2.0);  // TF: padded cells not counted
  EXPECT_DOUBLE_EQ(y[0][0][1][0].item<double>(), (6 + 7) / 2.0);
  EXPECT_DOUBLE_EQ(y[0][0][1][1].item<double>(), 8.0);
  auto even = torch::randn({2, 3, 4, 6}, kDouble);
  EXPECT_TRUE(torch::allclose(avg_pool_2x2_same(even), torch::avg_pool2d(even, {2, 2}, {2, 2})));
}

TEST(Layers, ScaledActivationsUseReferenceGammasAndPreserveVariance) {
  auto x = torch::linspace(-3, 3, 13, kDouble);
  const double k = std::sqrt(2.0 / M_PI);
  auto gelu_tanh = 0.5 * x * (1 + torch::tanh(k * (x + 0.044715 * x.pow(3))));
  EXPECT_TRUE(torch::allclose(scaled_activation(x, Activation::kGelu), gelu_tanh * 1.7015043497085571));
  EXPECT_TRUE(torch::allclose(scaled_activation(x, Activation::kRelu), x.clamp_min(0) * 1.7139588594436646));
  EXPECT_TRUE(torch::allclose(scaled_activation(x, Activation::kSilu), x * torch::sigmoid(x) * 1.7881293296813965));
  // gamma is chosen so that gamma * g(z), z ~ N(0,1), has unit variance.
  torch::manual_seed(7);
  auto z = torch::randn({1 << 20}, kDouble);
  for (auto a : {Activation::kGelu, Activation::kRelu, Activation::kSilu}) {
    EXPECT_NEAR(scaled_activation(z, a).var().item<double>(), 1.0, 0.01) << activation_name(a);
  }
  EXPECT_THROW(parse_activation("swish"), UserError);
  EXPECT_EQ(parse_activation("silu"), Activation::kSilu);
}

TEST(Layers, SqueezeExciteGatesWithTwiceSigmoid) {
  torch::manual_seed(8);
  SqueezeExcite se(6, 0.5);
  se->to(torch::kFloat64);
  EXPECT_EQ(se->fc0->weight.size(0), 3);  // hidden = int(6 * 0.5)
  auto x = torch::randn({2, 6, 3, 4}, kDouble);
  auto pooled = x.mean({2, 3});
  auto h = torch::relu(pooled.matmul(se->fc0->weight.t()) + se->fc0->bias);
  auto gate = torch::sigmoid(h.matmul(se->fc1->weight.t()) + se->fc1->bias).view({2, 6, 1, 1});
  EXPECT_TRUE(torch::allclose(se->gate(x), gate));
  EXPECT_TRUE(torch::allclose(se->forward(x), x * gate * 2));
  // With a zero second layer the gate is exactly 1/2, so 2 * gate * x == x.
  {
    torch::NoGradGuard g;
    se->fc1->weight.zero_();
  }
  EXPECT_TRUE(torch::equal(se->forward(x), x));
}

TEST(Layers, DenseInits) {
  torch::manual_seed(9);
  Dense head(400, 300, DenseInit::kClassifier);
  EXPECT_NEAR(head->weight.std().item<double>(), 0.01, 0.0002);
  EXPECT_EQ(head->bias.abs().max().item<float>(), 0.0f);
  Dense fc(100, 400, DenseInit::kTruncatedFanIn);
  const double sd = 0.1;
  EXPECT_LE(fc->weight.abs().max().item<double>(), 2 * sd + 1e-6);  // truncated at 2 sd
  // Var of N(0,1) truncated to [-2,2] = 0.7737413.
  EXPECT_NEAR(fc->weight.var().item<double>() / (sd * sd), 0.7737413, 0.02);
}

TEST(Layers, StochasticDepthIsPerSampleWithoutRescaling) {
  torch::manual_seed(10);
  auto x = torch::ones({4000, 3, 2, 2});
  auto y = stochastic_depth(x, 0.3, /*training=*/true);
  // Each sample is all kept (exactly 1, no 1/keep) or all dropped.
  auto per_sample = y.view({4000, -1});
  auto mins = std::get<0>(per_sample.min(1)), maxs = std::get<0>(per_sample.max(1));
  EXPECT_TRUE(torch::equal(mins, maxs));
  EXPECT_TRUE(torch::logical_or(maxs.eq(0), maxs.eq(1)).all().item<bool>());
  const double dropped = maxs.eq(0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(dropped, 0.3, 4 * std::sqrt(0.3 * 0.7 / 4000));
  EXPECT_TRUE(torch::equal(stochastic_depth(x, 0.3, /*training=*/false), x));
  EXPECT_TRUE(torch::equal(stochastic_depth(x, 0.0, /*training=*/true), x));
}

}  // namespace
}  // namespace nfscale::models
