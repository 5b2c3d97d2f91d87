// test_fused_ops.cpp - the fused NFNet ops (scaled GELU, residual tail, weight standardisation) against the
// unfused ATen composition: fp64 forward and gradients (analytic vs autograd, and finite differences), every kernel
// ISA this CPU runs (fp32 vs fp64 reference, bf16 within one bf16 rounding), both layouts, stochastic depth, the
// WS floor, the WS bf16 output under bf16 autocast (bits, gradients, no weight cast in the graph), whole-network
// gradients in fp64 and under bf16 autocast, the switch and the unfused fallback.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "nfscale/models/fused_kernels.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/nfnet/nfnet.h"
#include "nfscale/models/registry.h"
#include "nfscale/train/autocast.h"
#include "nfscale/util/cpu_features.h"
#include "models_test_util.h"

namespace nfscale::models {
namespace {

constexpr double kGamma = 1.7015043497085571;

using test::FusedSwitch;

torch::Tensor unfused_gelu(const torch::Tensor& x, double scale) { return torch::gelu(x, "tanh") * kGamma * (scale / kGamma); }

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

std::vector<torch::MemoryFormat> formats() { return {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}; }

TEST(FusedGelu, MatchesUnfusedInDoubleForwardAndBackward) {
  torch::manual_seed(1);
  for (auto fmt : formats()) {
    auto x0 = (torch::randn({3, 5, 4, 7}, torch::kDouble) * 3).contiguous(fmt);
    auto g = torch::randn({3, 5, 4, 7}, torch::kDouble);
    auto x1 = x0.clone().requires_grad_(true), x2 = x0.clone().requires_grad_(true);
    auto y1 = fused_scaled_gelu(x1, kGamma * 0.8);
    auto y2 = unfused_gelu(x2, kGamma * 0.8);
    EXPECT_EQ(y1.strides(), x0.strides());
    EXPECT_LT(max_abs(y1 - y2), 1e-13);
    (y1 * g).sum().backward();
    (y2 * g).sum().backward();
    EXPECT_LT(max_abs(x1.grad() - x2.grad()), 1e-12);
  }
}

TEST(FusedGelu, FiniteDifferencesInDouble) {
  torch::manual_seed(2);
  auto x = (torch::randn({2, 3, 3, 3}, torch::kDouble) * 2).contiguous(torch::MemoryFormat::ChannelsLast);
  auto w = torch::randn_like(x);
  auto xr = x.clone().requires_grad_(true);
  (fused_scaled_gelu(xr, 1.3) * w).sum().backward();
  auto f = [&](const torch::Tensor& v) { return (fused_scaled_gelu(v, 1.3) * w).sum().item<double>(); };
  const double h = 1e-6;
  for (int64_t i = 0; i < x.numel(); i += 5) {
    const int64_t n = i / 27, c = i / 9 % 3, r = i / 3 % 3, q = i % 3;
    auto xp = x.clone(), xm = x.clone();  // clones keep the channels_last strides
    xp[n][c][r][q] += h;
    xm[n][c][r][q] -= h;
    EXPECT_NEAR((f(xp) - f(xm)) / (2 * h), xr.grad()[n][c][r][q].item<double>(), 1e-7) << "element " << i;
  }
}

// Every ISA build this CPU can run, against the fp64 formula: fp32 within 2e-6 relative, bf16 within 1 rounding.
std::vector<const fused::KernelTable*> runnable_tables() {
  std::vector<const fused::KernelTable*> t = {&fused::kernels_generic()};
  if (cpu_features().avx2) t.push_back(&fused::kernels_avx2());
  if (cpu_features().avx512) t.push_back(&fused::kernels_avx512());
  return t;
}

TEST(FusedKernels, EveryIsaMatchesTheDoubleReference) {
  torch::manual_seed(3);
  const int64_t n = 1000 + 13;  // vector tails
  auto x = torch::randn({n}) * 4;
  x[0] = -30.0; x[1] = 30.0; x[2] = 0.0; x[3] = -9.0;
  auto g = torch::randn({n});
  auto xd = x.to(torch::kDouble), gd = g.to(torch::kDouble);
  auto ref_y = unfused_gelu(xd, kGamma);
  auto xdr = xd.clone().requires_grad_(true);
  (unfused_gelu(xdr, kGamma) * gd).sum().backward();
  auto ref_g = xdr.grad();
  for (const auto* k : runnable_tables()) {
    SCOPED_TRACE(k->isa);
    auto y = torch::empty_like(x), gx = torch::empty_like(x);
    k->gelu_fwd_f32(x.data_ptr<float>(), y.data_ptr<float>(), n, float(kGamma));
    k->gelu_bwd_f32(g.data_ptr<float>(), x.data_ptr<float>(), gx.data_ptr<float>(), n, float(kGamma));
    EXPECT_LT(max_abs((y.to(torch::kDouble) - ref_y) / (1 + ref_y.abs())), 2e-6);
    EXPECT_LT(max_abs((gx.to(torch::kDouble) - ref_g) / (1 + ref_g.abs())), 2e-6);
    // bf16: exact bf16 inputs, output = one rounding of the fp32 value (relative 2^-8; absolute 1e-12 where the fp64
    // tanh formula saturates to exactly 0 below x ~ -6 while the sigmoid form keeps the tiny true value).
    auto xb = x.to(torch::kBFloat16), yb = torch::empty_like(xb);
    k->gelu_fwd_bf16(reinterpret_cast<const uint16_t*>(xb.data_ptr<at::BFloat16>()),
                     reinterpret_cast<uint16_t*>(yb.data_ptr<at::BFloat16>()), n, float(kGamma));
    auto rb = unfused_gelu(xb.to(torch::kDouble), kGamma);
    EXPECT_LT(max_abs((yb.to(torch::kDouble) - rb) / (rb.abs() + 1e-12 * 256)), std::ldexp(1.0, -8));
    // residual tail, per-row and per-column coefficients, with a 13-column tail
    for (bool per_col : {false, true}) {
      const fused::TailShape s{5, 29, per_col};
      auto sc = torch::randn({5, 29}), br = torch::randn({5, 29}), gg = torch::randn({5, 29});
      auto coef = torch::randn({per_col ? 29 : 5});
      auto out = torch::empty_like(sc), dbr = torch::empty_like(sc), dot = torch::zeros_like(coef);
      k->tail_fwd_f32(sc.data_ptr<float>(), br.data_ptr<float>(), out.data_ptr<float>(), coef.data_ptr<float>(), s);
      k->tail_bwd_f32(gg.data_ptr<float>(), br.data_ptr<float>(), dbr.data_ptr<float>(), coef.data_ptr<float>(),
                      dot.data_ptr<float>(), s);
      auto cb = per_col ? coef.view({1, 29}) : coef.view({5, 1});
      EXPECT_LT(max_abs(out - (sc + cb * br)), 1e-5);
      EXPECT_LT(max_abs(dbr - cb * gg), 1e-5);
      auto rdot = per_col ? (gg * br).sum(0) : (gg * br).sum(1);
      EXPECT_LT(max_abs(dot - rdot), 1e-4);
    }
  }
}

// The weight standardisation rows of every ISA build against the same formulas in double (torch ops on fp64 copies),
// at row lengths that exercise the two-vector body, the one-vector loop and the tails; the bf16 output is the fp32
// output rounded once more, bit for bit; a floored row (S < eps) has st[2] = 0 and no r^3 term.
TEST(FusedKernels, WsRowsOfEveryIsaMatchTheDoubleFormulas) {
  torch::manual_seed(5);
  for (const int64_t K : {1, 7, 16, 33, 47, 1152}) {
    for (const bool floored : {false, true}) {
      const double eps = floored ? 1e3 : 1e-4, gain = 1.37;
      auto w = torch::randn({K}) * 0.1 + 0.02, g = torch::randn({K});
      auto wd = w.to(torch::kDouble), gd = g.to(torch::kDouble);
      const double mean = wd.mean().item<double>();
      auto u = wd - mean;
      const double S = (u * u).sum().item<double>(), r = 1.0 / std::sqrt(std::max(S, eps));
      auto ref_out = gain * r * u;
      const double sgu = (gd * u).sum().item<double>(), ind = S >= eps ? 1.0 : 0.0;
      auto ref_dw = gain * (r * (gd - gd.mean())) - ind * gain * r * r * r * sgu * u;
      for (const auto* k : runnable_tables()) {
        SCOPED_TRACE(std::string(k->isa) + " K=" + std::to_string(K) + (floored ? " floored" : ""));
        auto out = torch::empty_like(w), outb = torch::empty({K}, torch::kBFloat16), dw = torch::empty_like(w);
        double st[3] = {-1, -1, -1}, stb[3] = {-1, -1, -1};
        k->ws_fwd_row(w.data_ptr<float>(), out.data_ptr<float>(), nullptr, K, gain, eps, st);
        k->ws_fwd_row(w.data_ptr<float>(), nullptr, reinterpret_cast<uint16_t*>(outb.data_ptr<at::BFloat16>()), K,
                      gain, eps, stb);
        EXPECT_NEAR(st[0], mean, 1e-15 + 1e-13 * std::abs(mean));
        EXPECT_NEAR(st[1], r, 1e-12 * r);
        EXPECT_EQ(st[2], ind);
        for (int i = 0; i < 3; ++i) EXPECT_EQ(st[i], stb[i]);
        EXPECT_LT(max_abs(out.to(torch::kDouble) - ref_out), 1e-6 * (1.0 + max_abs(ref_out)));
        EXPECT_TRUE(torch::equal(outb, out.to(torch::kBFloat16)));  // one more rounding, bit for bit
        const double dgain = k->ws_bwd_row_f32(g.data_ptr<float>(), w.data_ptr<float>(), dw.data_ptr<float>(), K,
                                               gain, st);
        EXPECT_NEAR(dgain, r * sgu, 1e-9 * (1.0 + std::abs(r * sgu)));
        EXPECT_LT(max_abs(dw.to(torch::kDouble) - ref_dw), 1e-6 * (1.0 + max_abs(ref_dw)));
        // a bf16 incoming gradient is read exactly: the same as its fp32 conversion, bit for bit
        auto gb = g.to(torch::kBFloat16), dwb = torch::empty_like(w), dwf = torch::empty_like(w);
        auto gbf = gb.to(torch::kFloat);
        const double db = k->ws_bwd_row_bf16(reinterpret_cast<const uint16_t*>(gb.data_ptr<at::BFloat16>()),
                                             w.data_ptr<float>(), dwb.data_ptr<float>(), K, gain, st);
        const double df = k->ws_bwd_row_f32(gbf.data_ptr<float>(), w.data_ptr<float>(), dwf.data_ptr<float>(), K,
                                            gain, st);
        EXPECT_EQ(db, df);
        EXPECT_TRUE(torch::equal(dwb, dwf));
      }
    }
  }
}

TEST(FusedGelu, Bf16WithinOneRoundingOfTheUnfusedFp32Math) {
  torch::manual_seed(4);
  for (auto fmt : formats()) {
    auto x = (torch::randn({4, 8, 6, 6}) * 3).to(torch::kBFloat16).contiguous(fmt);
    auto xr = x.clone().requires_grad_(true);
    auto y = fused_scaled_gelu(xr, kGamma);
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    auto ref = unfused_gelu(x.to(torch::kDouble), kGamma);
    EXPECT_LT(max_abs((y.to(torch::kDouble) - ref) / (ref.abs() + 1e-12 * 256)), std::ldexp(1.0, -8));
    auto g = torch::randn({4, 8, 6, 6}).to(torch::kBFloat16);
    (y * g).sum().backward();
    auto xd = x.to(torch::kDouble).requires_grad_(true);
    (unfused_gelu(xd, kGamma) * g.to(torch::kDouble)).sum().backward();
    EXPECT_LT(max_abs((xr.grad().to(torch::kDouble) - xd.grad()) / (xd.grad().abs() + 1e-3)), 1e-2);
  }
}

// The unfused tail of NFBlockImpl::forward.
torch::Tensor unfused_tail(const torch::Tensor& sc, const torch::Tensor& br, const torch::Tensor& gate,
                           const torch::Tensor& mask, const torch::Tensor& skip_gain, double alpha) {
  auto b = br * (gate.unsqueeze(-1).unsqueeze(-1) * 2.0);
  if (mask.defined()) b = b * mask.view({-1, 1, 1, 1});
  return b * skip_gain * alpha + sc;
}

TEST(FusedTail, MatchesUnfusedInDoubleWithAndWithoutMask) {
  torch::manual_seed(5);
  for (auto fmt : formats()) {
    for (bool with_mask : {false, true}) {
      SCOPED_TRACE(std::to_string(with_mask) + (fmt == torch::MemoryFormat::ChannelsLast ? " channels_last" : " nchw"));
      auto sc0 = torch::randn({4, 6, 5, 3}, torch::kDouble).contiguous(fmt);
      auto br0 = torch::randn({4, 6, 5, 3}, torch::kDouble).contiguous(fmt);
      auto gate0 = torch::sigmoid(torch::randn({4, 6}, torch::kDouble));
      auto mask = with_mask ? torch::tensor({1.0, 0.0, 1.0, 1.0}, torch::kDouble) : torch::Tensor();
      auto sg0 = torch::tensor(0.37, torch::kDouble);
      auto g = torch::randn({4, 6, 5, 3}, torch::kDouble);
      std::vector<torch::Tensor> a = {sc0.clone().requires_grad_(true), br0.clone().requires_grad_(true),
                                      gate0.clone().requires_grad_(true), sg0.clone().requires_grad_(true)};
      std::vector<torch::Tensor> b = {sc0.clone().requires_grad_(true), br0.clone().requires_grad_(true),
                                      gate0.clone().requires_grad_(true), sg0.clone().requires_grad_(true)};
      auto y1 = fused_residual_tail(a[0], a[1], a[2], mask, a[3], 0.2);
      auto y2 = unfused_tail(b[0], b[1], b[2], mask, b[3], 0.2);
      EXPECT_EQ(y1.strides(), br0.strides());
      EXPECT_LT(max_abs(y1 - y2), 1e-14);
      (y1 * g).sum().backward();
      (y2 * g).sum().backward();
      for (int i = 0; i < 4; ++i) EXPECT_LT(max_abs(a[i].grad() - b[i].grad()), 1e-12) << "input " << i;
    }
  }
}

TEST(FusedTail, FiniteDifferencesForGateAndSkipGain) {
  torch::manual_seed(6);
  auto sc = torch::randn({2, 3, 4, 4}, torch::kDouble).contiguous(torch::MemoryFormat::ChannelsLast);
  auto br = torch::randn({2, 3, 4, 4}, torch::kDouble).contiguous(torch::MemoryFormat::ChannelsLast);
  auto gate = torch::rand({2, 3}, torch::kDouble).requires_grad_(true);
  auto sg = torch::tensor(0.5, torch::kDouble).requires_grad_(true);
  auto w = torch::randn({2, 3, 4, 4}, torch::kDouble);
  (fused_residual_tail(sc, br, gate, {}, sg, 0.2) * w).sum().backward();
  torch::NoGradGuard ng;
  auto f = [&](const torch::Tensor& gt, const torch::Tensor& s) {
    return (fused_residual_tail(sc, br, gt, {}, s, 0.2) * w).sum().item<double>();
  };
  const double h = 1e-6;
  for (int64_t i = 0; i < 6; ++i) {
    auto gp = gate.detach().clone(), gm = gate.detach().clone();
    gp.view(-1)[i] += h;
    gm.view(-1)[i] -= h;
    EXPECT_NEAR((f(gp, sg) - f(gm, sg)) / (2 * h), gate.grad().view(-1)[i].item<double>(), 1e-7);
  }
  const double d = (f(gate, sg + h) - f(gate, sg - h)) / (2 * h);
  EXPECT_NEAR(d, sg.grad().item<double>(), 1e-7);
}

TEST(FusedTail, Fp32AndBf16CloseToDouble) {
  torch::manual_seed(7);
  for (auto fmt : formats()) {
    auto sc = torch::randn({8, 40, 6, 6}).contiguous(fmt), br = torch::randn({8, 40, 6, 6}).contiguous(fmt);
    auto gate = torch::sigmoid(torch::randn({8, 40})).to(torch::kBFloat16).to(torch::kFloat);  // exact in bf16
    auto mask = torch::tensor({1.f, 1.f, 0.f, 1.f, 1.f, 1.f, 0.f, 1.f});
    auto sg = torch::tensor(0.8f);
    auto ref = unfused_tail(sc.to(torch::kDouble), br.to(torch::kDouble), gate.to(torch::kDouble),
                            mask.to(torch::kDouble), sg.to(torch::kDouble), 0.2);
    EXPECT_LT(max_abs(fused_residual_tail(sc, br, gate, mask, sg, 0.2).to(torch::kDouble) - ref), 1e-5);
    // bf16 streams: one bf16 rounding of the fp32 result
    auto scb = sc.to(torch::kBFloat16), brb = br.to(torch::kBFloat16);
    auto refb = unfused_tail(scb.to(torch::kDouble), brb.to(torch::kDouble), gate.to(torch::kDouble),
                             mask.to(torch::kDouble), sg.to(torch::kDouble), 0.2);
    auto yb = fused_residual_tail(scb, brb, gate, mask, sg, 0.2);
    EXPECT_EQ(yb.scalar_type(), torch::kBFloat16);
    EXPECT_LT(max_abs((yb.to(torch::kDouble) - refb) / (refb.abs() + 1e-2)), std::ldexp(1.0, -8) + 1e-6);
  }
}

// ---- weight standardisation ---------------------------------------------------------------------------------
// layers.cpp's composition of ATen ops, as it stood before the fused op (and still runs with the fused ops off).
torch::Tensor ws_composition(const torch::Tensor& weight, const torch::Tensor& gain, double eps) {
  const int64_t fan_in = weight[0].numel();
  auto mean = weight.mean({1, 2, 3}, /*keepdim=*/true);                    // [O,1,1,1]
  auto var = weight.var({1, 2, 3}, /*unbiased=*/false, /*keepdim=*/true);  // [O,1,1,1]
  auto scale = torch::rsqrt(torch::clamp_min(var * static_cast<double>(fan_in), eps)) * gain.view({-1, 1, 1, 1});
  return weight * scale - mean * scale;
}

struct WsOut {
  torch::Tensor y, dw, dgain;  // [O,I,kh,kw], d sum(y * g) / d weight [O,I,kh,kw], / d gain [O]
};
// Runs ws(weight, gain) on fresh leaves and back-propagates sum(y * g).
template <typename Ws>
WsOut ws_run(Ws ws, const torch::Tensor& weight, const torch::Tensor& gain, const torch::Tensor& g) {
  auto w = weight.clone().requires_grad_(true), gn = gain.clone().requires_grad_(true);
  auto y = ws(w, gn);
  (y * g).sum().backward();
  return {y.detach(), w.grad(), gn.grad()};
}
const auto kFusedWs = [](const torch::Tensor& w, const torch::Tensor& gn) { return fused_standardize_weight(w, gn, 1e-4); };
const auto kComposedWs = [](const torch::Tensor& w, const torch::Tensor& gn) { return ws_composition(w, gn, 1e-4); };
const auto kLayerWs = [](const torch::Tensor& w, const torch::Tensor& gn) { return standardize_weight(w, gn, 1e-4); };

// Largest per-output-channel error max_k |a_ok - ref_ok| / max(max_k |ref_ok|, 1); a, ref [O, ...].
double row_err(const torch::Tensor& a, const torch::Tensor& ref) {
  const auto r = ref.to(torch::kDouble).reshape({ref.size(0), -1});                      // [O,K]
  const auto d = (a.to(torch::kDouble).reshape({ref.size(0), -1}) - r).abs().amax(1);  // [O]
  return (d / r.abs().amax(1).clamp_min(1.0)).max().item<double>();
}

void expect_ws_close(const WsOut& a, const WsOut& ref, double tol) {
  EXPECT_LT(row_err(a.y, ref.y), tol);
  EXPECT_LT(row_err(a.dw, ref.dw), tol);
  EXPECT_LT(row_err(a.dgain.view({-1, 1}), ref.dgain.view({-1, 1})), tol);
}

// Weight [O,I,kh,kw] with a different mean per output channel (so the centring matters).
torch::Tensor ws_weight(std::vector<int64_t> shape, torch::Dtype dtype) {
  return (torch::randn(shape, torch::kDouble) * 0.2 + torch::randn({shape[0], 1, 1, 1}, torch::kDouble)).to(dtype);
}

TEST(FusedWs, MatchesTheCompositionInDouble) {
  torch::manual_seed(10);
  // 1x1 conv, 3x3 grouped (I/g = 4), depthwise-like stem with K = 9, the RGB stem (K = 27), a wide 1x1
  for (std::vector<int64_t> shape : {std::vector<int64_t>{24, 16, 1, 1}, {12, 4, 3, 3}, {16, 1, 3, 3}, {8, 3, 3, 3},
                                     {40, 384, 1, 1}}) {
    SCOPED_TRACE(torch::IntArrayRef(shape));
    auto w = ws_weight(shape, torch::kDouble);
    auto gain = torch::randn({shape[0]}, torch::kDouble);  // both signs
    auto g = torch::randn(shape, torch::kDouble);
    const WsOut f = ws_run(kFusedWs, w, gain, g), c = ws_run(kComposedWs, w, gain, g);
    EXPECT_TRUE(f.y.is_contiguous());
    EXPECT_EQ(f.y.sizes(), w.sizes());
    EXPECT_EQ(f.y.scalar_type(), torch::kDouble);
    expect_ws_close(f, c, 1e-12);
  }
}

// Rows 0 (constant, S = 0) and 1 (S ~ 3.6e-9) are below the floor eps = 1e-4, where r = 100 is constant and the
// r^3 term of the gradient drops out; row 2 (S ~ 3.6e-3) and row 3 (S ~ 36) are above it.
torch::Tensor ws_weight_with_floored_rows() {
  auto w = torch::randn({5, 4, 3, 3}, torch::kDouble);  // K = 36
  w[0].fill_(0.3);
  w[1].copy_(0.3 + 1e-5 * torch::randn({4, 3, 3}, torch::kDouble));
  w[2].copy_(-0.2 + 1e-2 * torch::randn({4, 3, 3}, torch::kDouble));
  return w;
}

TEST(FusedWs, FlooredChannelsMatchTheComposition) {
  torch::manual_seed(11);
  auto w = ws_weight_with_floored_rows();
  auto gain = torch::randn({5}, torch::kDouble);
  auto g = torch::randn({5, 4, 3, 3}, torch::kDouble);
  const WsOut f = ws_run(kFusedWs, w, gain, g), c = ws_run(kComposedWs, w, gain, g);
  expect_ws_close(f, c, 1e-12);
  // below the floor: dw = gain * 100 * (g - mean(g)) exactly as the formula says
  for (int o : {0, 1}) {
    auto expect = gain[o] * 100.0 * (g[o] - g[o].mean());  // [4,3,3]
    EXPECT_LT(max_abs(f.dw[o] - expect), 1e-12 * max_abs(expect)) << "row " << o;
  }
  EXPECT_LT(max_abs(f.y[0]), 1e-12);
}

TEST(FusedWs, FiniteDifferencesInDouble) {
  torch::manual_seed(12);
  auto w = ws_weight_with_floored_rows();
  auto gain = torch::randn({5}, torch::kDouble);
  auto g = torch::randn({5, 4, 3, 3}, torch::kDouble);
  const WsOut f = ws_run(kFusedWs, w, gain, g);
  auto loss = [&](const torch::Tensor& wv, const torch::Tensor& gv) {
    return (fused_standardize_weight(wv, gv, 1e-4) * g).sum().item<double>();
  };
  torch::NoGradGuard ng;
  const double h = 1e-6;
  for (int64_t i = 0; i < w.numel(); ++i) {
    auto wp = w.clone(), wm = w.clone();
    wp.view(-1)[i] += h;
    wm.view(-1)[i] -= h;
    const double fd = (loss(wp, gain) - loss(wm, gain)) / (2 * h), an = f.dw.view(-1)[i].item<double>();
    EXPECT_NEAR(fd, an, 1e-7 * (1 + std::abs(an))) << "weight element " << i;
  }
  for (int64_t o = 0; o < 5; ++o) {
    auto gp = gain.clone(), gm = gain.clone();
    gp[o] += h;
    gm[o] -= h;
    const double fd = (loss(w, gp) - loss(w, gm)) / (2 * h), an = f.dgain[o].item<double>();
    EXPECT_NEAR(fd, an, 1e-7 * (1 + std::abs(an))) << "gain " << o;
  }
}

TEST(FusedWs, Fp32CloseToDouble) {
  torch::manual_seed(13);
  for (std::vector<int64_t> shape : {std::vector<int64_t>{64, 32, 3, 3}, {128, 256, 1, 1}}) {
    SCOPED_TRACE(torch::IntArrayRef(shape));
    auto w = ws_weight(shape, torch::kFloat);
    auto gain = (1 + 0.1 * torch::randn({shape[0]})).to(torch::kFloat);
    auto g = torch::randn(shape);
    const WsOut f = ws_run(kFusedWs, w, gain, g);
    const WsOut ref = ws_run(kFusedWs, w.to(torch::kDouble), gain.to(torch::kDouble), g.to(torch::kDouble));
    EXPECT_EQ(f.y.scalar_type(), torch::kFloat);
    EXPECT_EQ(f.dw.scalar_type(), torch::kFloat);
    EXPECT_EQ(f.dgain.scalar_type(), torch::kFloat);
    // sums in double, one fp32 rounding per output element
    EXPECT_LT(max_abs(f.y - ref.y) / max_abs(ref.y), 2e-7);
    EXPECT_LT(max_abs(f.dw - ref.dw) / max_abs(ref.dw), 2e-7);
    EXPECT_LT(max_abs(f.dgain - ref.dgain) / max_abs(ref.dgain), 2e-7);
  }
}

TEST(FusedWs, SwitchAndUnsupportedInputsTakeTheComposition) {
  torch::manual_seed(14);
  auto w = ws_weight({16, 8, 3, 3}, torch::kFloat);
  auto gain = torch::randn({16});
  auto g = torch::randn({16, 8, 3, 3});
  auto bit_equal = [](const WsOut& a, const WsOut& b) {
    return torch::equal(a.y, b.y) && torch::equal(a.dw, b.dw) && torch::equal(a.dgain, b.dgain);
  };
  {
    FusedSwitch sw(false);
    EXPECT_TRUE(bit_equal(ws_run(kLayerWs, w, gain, g), ws_run(kComposedWs, w, gain, g)));
  }
  FusedSwitch sw(true);
  const std::string node = WSConv2d(8, 16, 3)->standardized_weight().grad_fn()->name();
  EXPECT_NE(node.find("StandardizeWeightFn"), std::string::npos) << node;
  EXPECT_TRUE(bit_equal(ws_run(kLayerWs, w, gain, g), ws_run(kFusedWs, w, gain, g)));
  // non-contiguous (channels_last 3x3) and bf16 weights: the composition, bit for bit, also via the fused entry
  auto wcl = w.contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(bit_equal(ws_run(kLayerWs, wcl, gain, g), ws_run(kComposedWs, wcl, gain, g)));
  EXPECT_TRUE(bit_equal(ws_run(kFusedWs, wcl, gain, g), ws_run(kComposedWs, wcl, gain, g)));
  auto wb = w.to(torch::kBFloat16), gb = gain.to(torch::kBFloat16), gg = g.to(torch::kBFloat16);
  EXPECT_TRUE(bit_equal(ws_run(kLayerWs, wb, gb, gg), ws_run(kComposedWs, wb, gb, gg)));
  // under bf16 autocast the fp32 master weight standardises straight to bf16 (FusedWs.Bf16Autocast* below); the
  // composition (switch off, channels_last weight) stays fp32 and the conv casts it
  train::AutocastScope ac(true);
  EXPECT_EQ(standardize_weight(w, gain).scalar_type(), torch::kBFloat16);
  EXPECT_EQ(standardize_weight(wcl, gain).scalar_type(), torch::kFloat);
  FusedSwitch off(false);
  EXPECT_EQ(standardize_weight(w, gain).scalar_type(), torch::kFloat);
}

// ---- bf16 output of the fused WS (bf16 autocast) -------------------------------------------------------------
const auto kFusedWsBf16 = [](const torch::Tensor& w, const torch::Tensor& gn) {
  return fused_standardize_weight(w, gn, 1e-4, torch::kBFloat16);
};

TEST(FusedWs, Bf16OutputIsTheFp32OutputRoundedBitForBit) {
  torch::manual_seed(15);
  // 1x1, 3x3 grouped, the RGB stem (K = 27), a wide 3x3 (K = 1152), with floored rows
  for (std::vector<int64_t> shape : {std::vector<int64_t>{24, 16, 1, 1}, {12, 4, 3, 3}, {8, 3, 3, 3},
                                     {64, 128, 3, 3}}) {
    SCOPED_TRACE(torch::IntArrayRef(shape));
    auto w = ws_weight(shape, torch::kFloat);
    auto gain = torch::randn({shape[0]});
    auto y32 = fused_standardize_weight(w, gain, 1e-4);                    // [O,I,kh,kw] fp32
    auto y16 = fused_standardize_weight(w, gain, 1e-4, torch::kBFloat16);  // [O,I,kh,kw] bf16
    EXPECT_EQ(y16.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(y16.sizes(), w.sizes());
    EXPECT_TRUE(y16.is_contiguous());
    EXPECT_TRUE(torch::equal(y16, y32.to(torch::kBFloat16)));
  }
  auto wf = ws_weight_with_floored_rows().to(torch::kFloat);
  auto gf = torch::randn({5});
  EXPECT_TRUE(torch::equal(fused_standardize_weight(wf, gf, 1e-4, torch::kBFloat16),
                           fused_standardize_weight(wf, gf, 1e-4).to(torch::kBFloat16)));
  // Exact fp32 outputs at the rounding edges: a row (0, 0, 2, 2) has mean 1, S = 4, r = 1/2, so w_hat = gain/2 *
  // (-1, -1, 1, 1). fp32 bits of gain/2: ties to even (down, up), just below / above a tie, carries into the
  // exponent (also near the top of the range), a subnormal, a negative tie.
  const std::vector<uint32_t> bits = {0x3F808000u, 0x3F818000u, 0x3F807FFFu, 0x3F808001u, 0x3FFFFFFFu, 0x7EFFFFFFu,
                                      0x00012345u, 0xBF818000u};
  const int64_t O = int64_t(bits.size());
  auto half_gain = torch::empty({O});  // [O] = gain / 2
  std::memcpy(half_gain.data_ptr<float>(), bits.data(), bits.size() * 4);
  auto wt = torch::tensor({0.0f, 0.0f, 2.0f, 2.0f}).view({1, 4, 1, 1}).repeat({O, 1, 1, 1});  // [O,4,1,1]
  auto y32 = fused_standardize_weight(wt, half_gain * 2, 1e-4);  // [O,4,1,1]
  ASSERT_TRUE(torch::equal(y32.select(1, 3).flatten(), half_gain));  // exact, as designed
  auto y16 = fused_standardize_weight(wt, half_gain * 2, 1e-4, torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y16, y32.to(torch::kBFloat16)));
  for (int64_t o = 0; o < O; ++o)
    EXPECT_EQ(y16[o][3][0][0].item<at::BFloat16>().x, c10::BFloat16(half_gain[o].item<float>()).x) << "row " << o;
}

TEST(FusedWs, Bf16IncomingGradientEqualsItsFp32Conversion) {
  torch::manual_seed(16);
  for (std::vector<int64_t> shape : {std::vector<int64_t>{64, 32, 3, 3}, {128, 256, 1, 1}, {12, 4, 3, 3}}) {
    for (auto fmt : formats()) {  // conv2d's weight gradient can arrive channels_last
      SCOPED_TRACE(torch::IntArrayRef(shape));
      auto w = ws_weight(shape, torch::kFloat);
      auto gain = (1 + 0.1 * torch::randn({shape[0]})).to(torch::kFloat);
      auto gb = torch::randn(shape).to(torch::kBFloat16).contiguous(fmt);  // [O,I,kh,kw] bf16
      auto run = [&](bool bf16) {
        auto wl = w.clone().requires_grad_(true), gl = gain.clone().requires_grad_(true);
        auto y = bf16 ? kFusedWsBf16(wl, gl) : kFusedWs(wl, gl);
        y.backward(bf16 ? gb : gb.to(torch::kFloat));
        return WsOut{y.detach(), wl.grad(), gl.grad()};
      };
      const WsOut b = run(true), f = run(false);
      EXPECT_EQ(b.dw.scalar_type(), torch::kFloat);
      EXPECT_EQ(b.dgain.scalar_type(), torch::kFloat);
      // exact widening and the same sums in the same order: bit for bit
      EXPECT_TRUE(torch::equal(b.dw, f.dw));
      EXPECT_TRUE(torch::equal(b.dgain, f.dgain));
      // and both close to the fp64 op with the same (bf16-exact) gradient
      const WsOut ref = ws_run(kFusedWs, w.to(torch::kDouble), gain.to(torch::kDouble), gb.to(torch::kDouble));
      EXPECT_LT(max_abs(b.dw - ref.dw) / max_abs(ref.dw), 2e-7);
      EXPECT_LT(max_abs(b.dgain - ref.dgain) / max_abs(ref.dgain), 2e-7);
    }
  }
}

TEST(FusedWs, OutDtypesTheKernelDoesNotWriteAreACastAndNonFloatThrows) {
  torch::manual_seed(17);
  auto w = ws_weight({16, 8, 3, 3}, torch::kDouble);
  auto gain = torch::randn({16}, torch::kDouble);
  auto g = torch::randn({16, 8, 3, 3}, torch::kDouble);
  // fp64 weight asked for bf16: the fp64 kernel, then .to(bf16) (a ToCopyBackward carries the gradient back)
  const WsOut b = ws_run(kFusedWsBf16, w, gain, g.to(torch::kBFloat16));
  EXPECT_EQ(b.y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(b.y, fused_standardize_weight(w, gain, 1e-4).to(torch::kBFloat16)));
  EXPECT_EQ(b.dw.scalar_type(), torch::kDouble);
  const WsOut d = ws_run(kFusedWs, w, gain, g.to(torch::kBFloat16).to(torch::kDouble));
  EXPECT_LT(row_err(b.dw, d.dw), 1e-12);
  EXPECT_LT(row_err(b.dgain.view({-1, 1}), d.dgain.view({-1, 1})), 1e-12);
  // an explicit out_dtype equal to the weight's is the default
  EXPECT_TRUE(torch::equal(fused_standardize_weight(w, gain, 1e-4, torch::kDouble), d.y));
  // fp32 weight asked for fp64: the fp32 kernel, then the cast
  auto wf = w.to(torch::kFloat), gf = gain.to(torch::kFloat);
  auto y64 = fused_standardize_weight(wf, gf, 1e-4, torch::kDouble);
  EXPECT_EQ(y64.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(y64, fused_standardize_weight(wf, gf, 1e-4).to(torch::kDouble)));
  // unsupported layout with an out_dtype: the composition, then the cast
  auto wcl = wf.contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(torch::equal(fused_standardize_weight(wcl, gf, 1e-4, torch::kBFloat16),
                           ws_composition(wcl, gf, 1e-4).to(torch::kBFloat16)));
  // a non-floating out_dtype is an error that names the argument
  try {
    fused_standardize_weight(wf, gf, 1e-4, torch::kInt);
    ADD_FAILURE() << "no error for an integer out_dtype";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("out_dtype must be a floating type"), std::string::npos) << e.what();
  }
}

// Autograd graph below y: how many fused-WS nodes, and how many of them are fed by a cast node (ToCopyBackward:
// the autocast cast of an fp32 standardised weight to bf16).
struct WsGraph {
  int ws_nodes = 0, ws_casts = 0;
};
WsGraph scan_ws_graph(const torch::Tensor& y) {
  WsGraph r;
  std::vector<torch::autograd::Node*> stack = {y.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  auto is_ws = [](const torch::autograd::Node* n) {
    return n->name().find("StandardizeWeightFn") != std::string::npos;
  };
  while (!stack.empty()) {
    torch::autograd::Node* n = stack.back();
    stack.pop_back();
    if (!n || !seen.insert(n).second) continue;
    if (is_ws(n)) ++r.ws_nodes;
    const bool cast = n->name().find("ToCopyBackward") != std::string::npos;
    for (const auto& e : n->next_edges()) {
      if (!e.function) continue;
      if (cast && is_ws(e.function.get())) ++r.ws_casts;
      stack.push_back(e.function.get());
    }
  }
  return r;
}

// WSConv2dImpl::forward as it ran before the bf16 WS output: the fp32 fused WS, then conv2d (autocast casts it).
torch::Tensor wsconv_cast_after_fp32_ws(WSConv2d& conv, const torch::Tensor& x, int64_t k, int64_t stride,
                                        int64_t groups) {
  const SamePad ph = same_padding(x.size(2), k, stride), pw = same_padding(x.size(3), k, stride);
  const auto w_hat = fused_standardize_weight(conv->weight, conv->gain, 1e-4);  // [out, in/groups, k, k] fp32
  auto padded = torch::constant_pad_nd(x, {pw.before, pw.after, ph.before, ph.after}, 0.0);
  const std::vector<int64_t> strides = {stride, stride}, no_padding = {0, 0}, dilation = {1, 1};
  return torch::conv2d(padded, w_hat, conv->bias, strides, no_padding, dilation, groups);
}

TEST(FusedWs, Bf16AutocastWSConvWritesTheBf16WeightAndMatchesCastAfterFp32) {
  FusedSwitch sw(true);
  // (in, out, kernel, stride, groups): symmetric SAME padding, asymmetric (stride 2), grouped, a 1x1
  for (std::vector<int64_t> c : {std::vector<int64_t>{16, 24, 3, 1, 1}, {16, 32, 3, 2, 1}, {32, 32, 3, 1, 4},
                                 {24, 48, 1, 1, 1}}) {
    SCOPED_TRACE(torch::IntArrayRef(c));
    torch::manual_seed(18);
    WSConv2d conv(c[0], c[1], c[2], c[3], c[4]);
    {
      torch::NoGradGuard ng;
      conv->gain.copy_(1 + 0.1 * torch::randn({c[1]}));
      conv->bias.copy_(0.1 * torch::randn({c[1]}));
    }
    auto x = torch::randn({4, c[0], 9, 9}).contiguous(torch::MemoryFormat::ChannelsLast);
    auto gy = torch::randn({4, c[1], (9 + c[3] - 1) / c[3], (9 + c[3] - 1) / c[3]});
    EXPECT_EQ(conv->standardized_weight().scalar_type(), torch::kFloat);
    auto run = [&](bool before) {
      conv->zero_grad();
      auto xl = x.clone().requires_grad_(true);
      torch::Tensor y;
      WsGraph graph;
      {
        train::AutocastScope ac(true);
        if (!before) {
          EXPECT_EQ(conv->standardized_weight().scalar_type(), torch::kBFloat16);
        }
        y = before ? wsconv_cast_after_fp32_ws(conv, xl, c[2], c[3], c[4]) : conv->forward(xl);
        graph = scan_ws_graph(y);
      }
      y.backward(gy.to(y.scalar_type()));
      return std::make_tuple(y.detach(), xl.grad(), conv->weight.grad().clone(), conv->gain.grad().clone(),
                             conv->bias.grad().clone(), graph);
    };
    const auto [y0, dx0, dw0, dg0, db0, graph0] = run(true);
    const auto [y1, dx1, dw1, dg1, db1, graph1] = run(false);
    // the conv still runs in bf16 (input and bias cast by autocast) on the same bf16 weight bits
    EXPECT_EQ(y1.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(y1, y0));
    EXPECT_EQ(graph0.ws_nodes, 1);
    EXPECT_EQ(graph0.ws_casts, 1);  // before: the weight cast
    EXPECT_EQ(graph1.ws_nodes, 1);
    EXPECT_EQ(graph1.ws_casts, 0);  // now: none
    // gradients: the same bf16 conv gradients; the WS backward reads the weight's directly
    EXPECT_EQ(dw1.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::equal(dx1, dx0));
    EXPECT_TRUE(torch::equal(db1, db0));
    EXPECT_TRUE(torch::equal(dw1, dw0));
    EXPECT_TRUE(torch::equal(dg1, dg0));
  }
}

// mini-F0 for 3-channel inputs and 5 classes.
ModelConfig mini_f0_config() {
  ModelConfig cfg;
  cfg.name = "mini-F0";
  cfg.num_classes = 5;
  cfg.in_channels = 3;
  return cfg;
}

TEST(FusedWs, Bf16AutocastMiniF0HasNoWeightCasts) {
  FusedSwitch sw(true);
  torch::manual_seed(19);
  auto model = build_model(mini_f0_config());
  model->train();
  auto x = torch::randn({2, 3, 32, 32}).contiguous(torch::MemoryFormat::ChannelsLast);
  train::AutocastScope ac(true);
  const WsGraph graph = scan_ws_graph(model->forward(x));
  EXPECT_GT(graph.ws_nodes, 10);
  EXPECT_EQ(graph.ws_casts, 0);
}

// Whole network (mini-F0, with stochastic depth) in fp64: fused and unfused give the same loss and parameter
// gradients, in both layouts.
std::vector<torch::Tensor> network_grads(bool fused, torch::MemoryFormat fmt, torch::Dtype dtype, bool bf16,
                                         double* loss_out, double stochastic_depth = 0.5) {
  FusedSwitch sw(fused);
  torch::manual_seed(8);
  ModelConfig cfg = mini_f0_config();
  cfg.stochastic_depth = stochastic_depth;
  cfg.dropout = stochastic_depth > 0 ? -1.0 : 0.0;  // random draws differ between dtypes: off when comparing them
  auto model = build_model(cfg);
  // non-zero skip gains so the residual branches matter
  for (auto& p : model->named_parameters())
    if (p.key().find("skip_gain") != std::string::npos) p.value().data().fill_(0.7);
  model->to(dtype);
  model->train();
  auto x = torch::randn({6, 3, 32, 32}).to(dtype).contiguous(fmt);
  auto y = torch::randint(0, 5, {6});
  torch::manual_seed(9);  // stochastic-depth draws
  torch::Tensor loss;
  {
    train::AutocastScope ac(bf16);
    loss = torch::cross_entropy_loss(model->forward(x).to(dtype), y);
  }
  loss.backward();
  *loss_out = loss.item<double>();
  std::vector<torch::Tensor> g;
  for (auto& p : model->parameters()) g.push_back(p.grad().clone());
  return g;
}

TEST(FusedNetwork, GradientsEqualUnfusedInDouble) {
  for (auto fmt : formats()) {
    double l1 = 0, l2 = 0;
    auto g1 = network_grads(true, fmt, torch::kDouble, false, &l1);
    auto g2 = network_grads(false, fmt, torch::kDouble, false, &l2);
    EXPECT_NEAR(l1, l2, 1e-12);
    ASSERT_EQ(g1.size(), g2.size());
    for (size_t i = 0; i < g1.size(); ++i)
      EXPECT_LT(max_abs(g1[i] - g2[i]), 1e-10 * (1 + max_abs(g2[i]))) << "param " << i;
  }
}

TEST(FusedNetwork, Bf16AutocastGradientsCloseToUnfused) {
  // bf16 rounds differently on the two paths (fused: one rounding per fused op); compare each parameter's gradient
  // to the fp64 gradient, relative to its norm: fused must be no worse than 1.5x unfused's error + 1e-2.
  double l64 = 0, lf = 0, lu = 0;
  auto fmt = torch::MemoryFormat::ChannelsLast;
  auto g64 = network_grads(true, fmt, torch::kDouble, false, &l64, 0.0);
  auto gf = network_grads(true, fmt, torch::kFloat, true, &lf, 0.0);
  auto gu = network_grads(false, fmt, torch::kFloat, true, &lu, 0.0);
  EXPECT_NEAR(lf, l64, 0.05 * std::abs(l64) + 1e-3);
  EXPECT_NEAR(lu, l64, 0.05 * std::abs(l64) + 1e-3);
  double ef_sum = 0, eu_sum = 0;
  for (size_t i = 0; i < g64.size(); ++i) {
    const double n = g64[i].norm().item<double>() + 1e-12;
    ef_sum += (gf[i].to(torch::kDouble) - g64[i]).norm().item<double>() / n;
    eu_sum += (gu[i].to(torch::kDouble) - g64[i]).norm().item<double>() / n;
  }
  const double ef = ef_sum / g64.size(), eu = eu_sum / g64.size();
  RecordProperty("mean_rel_grad_err_fused", std::to_string(ef));
  RecordProperty("mean_rel_grad_err_unfused", std::to_string(eu));
  std::printf("bf16 autocast mean relative gradient error vs fp64: fused %.4f, unfused %.4f\n", ef, eu);
  EXPECT_LT(ef, 1.5 * eu + 1e-2);
  EXPECT_LT(ef, 0.1);
}

TEST(FusedSwitchTest, OffRunsTheUnfusedOpsAndSelfCheckPasses) {
  EXPECT_TRUE(fused_self_check()) << fused_ops_status();
  {
    FusedSwitch sw(false);
    EXPECT_FALSE(fused_ops_enabled());
    EXPECT_NE(fused_ops_status().find("off"), std::string::npos);
    auto x = torch::randn({2, 3, 4, 4});
    // the unfused path is the plain ATen composition, bit for bit
    EXPECT_TRUE(torch::equal(scaled_activation(x, Activation::kGelu, 0.5), torch::gelu(x, "tanh") * kGamma * 0.5));
  }
  FusedSwitch sw(true);
  EXPECT_TRUE(fused_ops_enabled());
  // relu / silu always take the ATen ops
  auto x = torch::randn({2, 3});
  EXPECT_TRUE(torch::equal(scaled_activation(x, Activation::kRelu), torch::relu(x) * activation_gamma(Activation::kRelu)));
}

}  // namespace
}  // namespace nfscale::models
