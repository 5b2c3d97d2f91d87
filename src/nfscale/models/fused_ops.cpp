// fused_ops.cpp - autograd functions for the fused scaled GELU, the fused residual tail and the fused weight
// standardisation (see fused_ops.h), the fp64 scalar paths, the CPU self-check and the process-wide switch.
// The WS rows are templated on the output / incoming-gradient element type: an fp32 weight can write its
// standardised weight as bf16 (bf16 autocast: the conv then takes it without a cast) and read that output's bf16
// gradient directly; statistics, sums and dw, dgain stay in double / the weight's dtype.
#include "nfscale/models/fused_ops.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <type_traits>
#include <vector>

#include "nfscale/models/dense_conv3x3.h"
#include "nfscale/models/fused_kernels.h"
#include "nfscale/models/grouped_conv3x3.h"
#include "nfscale/models/layers.h"
#include "nfscale/util/cpu_features.h"

namespace nfscale::models {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace fk = fused;

// ---- fp64 scalar math (the reference the kernels are checked against) ---------------------------------------
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kCubic = 0.044715;
inline double gelu_d(double x) { return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x))); }
inline double gelu_grad_d(double x) {
  const double t = std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * kCubic * x * x);
}

// A tensor with exactly `like`'s strides holding t's values (a copy only when the layouts differ).
Tensor same_strides(const Tensor& t, const Tensor& like) {
  if (t.strides() == like.strides() && t.is_non_overlapping_and_dense()) return t;
  auto out = at::empty_like(like);
  out.copy_(t);
  return out;
}

Tensor dense(const Tensor& x) { return x.is_non_overlapping_and_dense() ? x : x.contiguous(); }

constexpr int64_t kGrain = 1 << 15;  // elements per parallel chunk of the element-wise kernels

// ---- scaled GELU --------------------------------------------------------------------------------------------
class ScaledGeluFn : public torch::autograd::Function<ScaledGeluFn> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, double scale) {
    const Tensor x = dense(x_in);                   // any shape, dense
    Tensor y = at::empty_like(x);                   // same strides
    const int64_t n = x.numel();
    const auto& k = fk::fused_kernel_table();
    const auto st = x.scalar_type();
    if (st == at::kDouble) {
      const double* xp = x.data_ptr<double>();
      double* yp = y.data_ptr<double>();
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) yp[i] = scale * gelu_d(xp[i]);
      });
    } else if (st == at::kFloat) {
      const float* xp = x.data_ptr<float>();
      float* yp = y.data_ptr<float>();
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { k.gelu_fwd_f32(xp + b, yp + b, e - b, float(scale)); });
    } else if (st == at::kBFloat16) {
      auto xp = reinterpret_cast<const fk::bf16_t*>(x.data_ptr<at::BFloat16>());
      auto yp = reinterpret_cast<fk::bf16_t*>(y.data_ptr<at::BFloat16>());
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { k.gelu_fwd_bf16(xp + b, yp + b, e - b, float(scale)); });
    } else {
      TORCH_CHECK(false, "fused_scaled_gelu: unsupported dtype ", st);
    }
    ctx->save_for_backward({x});
    ctx->saved_data["scale"] = scale;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor x = ctx->get_saved_variables()[0];
    const double scale = ctx->saved_data["scale"].toDouble();
    const Tensor g = same_strides(grads[0].to(x.scalar_type()), x);
    Tensor gx = at::empty_like(x);
    const int64_t n = x.numel();
    const auto& k = fk::fused_kernel_table();
    const auto st = x.scalar_type();
    if (st == at::kDouble) {
      const double *xp = x.data_ptr<double>(), *gp = g.data_ptr<double>();
      double* op = gx.data_ptr<double>();
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) op[i] = gp[i] * scale * gelu_grad_d(xp[i]);
      });
    } else if (st == at::kFloat) {
      const float *xp = x.data_ptr<float>(), *gp = g.data_ptr<float>();
      float* op = gx.data_ptr<float>();
      at::parallel_for(0, n, kGrain,
                       [&](int64_t b, int64_t e) { k.gelu_bwd_f32(gp + b, xp + b, op + b, e - b, float(scale)); });
    } else {
      auto xp = reinterpret_cast<const fk::bf16_t*>(x.data_ptr<at::BFloat16>());
      auto gp = reinterpret_cast<const fk::bf16_t*>(g.data_ptr<at::BFloat16>());
      auto op = reinterpret_cast<fk::bf16_t*>(gx.data_ptr<at::BFloat16>());
      at::parallel_for(0, n, kGrain,
                       [&](int64_t b, int64_t e) { k.gelu_bwd_bf16(gp + b, xp + b, op + b, e - b, float(scale)); });
    }
    return {gx, Tensor()};
  }
};

// ---- residual tail ------------------------------------------------------------------------------------------
// One image's layout: NCHW -> rows = C (coef per row), channels_last -> rows = H*W (coef per column).
fk::TailShape tail_shape(const Tensor& t) {
  const int64_t c = t.size(1), hw = t.size(2) * t.size(3);
  if (t.is_contiguous()) return {c, hw, false};
  return {hw, c, true};
}

template <typename T>
void tail_fwd_d(const T* sc, const T* br, T* out, const T* coef, fk::TailShape s) {
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t c = 0; c < s.cols; ++c) {
      const int64_t i = r * s.cols + c;
      out[i] = sc[i] + coef[s.coef_per_col ? c : r] * br[i];
    }
}
template <typename T>
void tail_bwd_d(const T* g, const T* br, T* dbr, const T* coef, T* dot, fk::TailShape s) {
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t c = 0; c < s.cols; ++c) {
      const int64_t i = r * s.cols + c, k = s.coef_per_col ? c : r;
      dbr[i] = coef[k] * g[i];
      dot[k] += g[i] * br[i];
    }
}

class ResidualTailFn : public torch::autograd::Function<ResidualTailFn> {
 public:
  // shortcut, branch [B,C,H,W] same dtype and strides (NCHW- or channels_last-contiguous); gate [B,C];
  // mask [B] or undefined; skip_gain [].
  static Tensor forward(AutogradContext* ctx, const Tensor& shortcut, const Tensor& branch, const Tensor& gate,
                        const Tensor& mask, const Tensor& skip_gain, double alpha) {
    const ResidualTailCoef c = residual_tail_coef(gate, mask, skip_gain, alpha, branch.scalar_type());
    Tensor out = residual_tail_pass(shortcut, branch, c.coef);  // [B,C,H,W]
    ctx->save_for_backward({branch, c.coef, c.unit, c.ms, c.sg});
    ctx->saved_data["gate_dtype"] = gate.scalar_type();
    ctx->saved_data["sg_dtype"] = skip_gain.scalar_type();
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &branch = saved[0], &coef = saved[1], &unit = saved[2];  // [B,C,H,W], [B,C], [B,C]
    const Tensor g = grads[0].to(branch.scalar_type());  // [B,C,H,W]
    Tensor dbr, dot;  // [B,C,H,W], [B,C]
    residual_tail_grad_pass(g, branch, coef, dbr, dot);
    // d gate[b,c] = skip_gain * 2 alpha mask[b] * dot[b,c];  d skip_gain = sum(2 alpha gate mask * dot).
    const Tensor &ms = saved[3], &sg = saved[4];  // [B,1], []
    const Tensor dgate = (dot * ms * sg).to(ctx->saved_data["gate_dtype"].toScalarType());  // [B,C]
    const Tensor dsg = (unit * dot).sum().to(ctx->saved_data["sg_dtype"].toScalarType());   // []
    return {g, dbr, dgate, Tensor(), dsg, Tensor()};
  }
};

// ---- scaled weight standardisation ---------------------------------------------------------------------------
// sum_{k<n} term(k) in double with 8 independent partial sums: the compiler vectorises the lanes (one serial
// chain could not be reordered without -ffast-math), and the order is fixed, so results do not depend on the ISA.
template <typename F>
inline double lane_sum(int64_t n, F term) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(k + l);
  double s = 0.0;
  for (; k < n; ++k) s += term(k);
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// Per-channel statistics saved for backward: stats [O, 3] double = (mean_o, r_o, 1 if S_o >= eps else 0).
// (clamp_min(S, eps) passes its gradient where S >= eps, as here.)
constexpr int kStats = 3;

// One output channel of fp64 weights (fp32 weights run the vector rows of fused_kernels.h): w, out [K]; writes
// out = gain r (w - mean) and st [3].
void ws_fwd_row_d(const double* w, double* out, double gain, double eps, int64_t K, double* st) {
  const double mean = lane_sum(K, [&](int64_t k) { return w[k]; }) / double(K);
  const double S = lane_sum(K, [&](int64_t k) { const double u = w[k] - mean; return u * u; });
  const double r = 1.0 / std::sqrt(std::max(S, eps));
  const double c = gain * r;
  for (int64_t k = 0; k < K; ++k) out[k] = c * (w[k] - mean);
  st[0] = mean; st[1] = r; st[2] = S >= eps ? 1.0 : 0.0;
}

// One output channel of fp64 weights: g, w, dw [K]; returns dgain = r sum_k g_k u_k and writes
// dw = gain (r (g - mean(g)) - [S >= eps] r^3 u sum_k g_k u_k)   (dS/dw_j = 2 u_j since sum_k u_k = 0).
double ws_bwd_row_d(const double* g, const double* w, double* dw, double gain, int64_t K, const double* st) {
  const double mean = st[0], r = st[1];
  const double sg = lane_sum(K, [&](int64_t k) { return g[k]; });
  const double sgu = lane_sum(K, [&](int64_t k) { return g[k] * (w[k] - mean); });
  const double gmean = sg / double(K);
  const double a = gain * r, b = st[2] * gain * r * r * r * sgu;
  for (int64_t k = 0; k < K; ++k) dw[k] = a * (g[k] - gmean) - b * (w[k] - mean);
  return r * sgu;
}

// Output channels per parallel chunk: about kGrain weights.
int64_t ws_grain(int64_t K) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(K, 1)); }

// All O rows: w [O, K] T, out [O, K] OutT, gain [O] T, stats [O, 3].
template <typename T, typename OutT>
void ws_fwd_rows(const Tensor& weight, const Tensor& gain, Tensor& out, double eps, double* st) {
  const int64_t O = weight.size(0), K = weight.numel() / O;
  const T *w = weight.data_ptr<T>(), *gn = gain.data_ptr<T>();
  OutT* y = out.data_ptr<OutT>();
  const fk::KernelTable& kt = fk::fused_kernel_table();
  at::parallel_for(0, O, ws_grain(K), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      if constexpr (std::is_same_v<T, double>) {
        ws_fwd_row_d(w + o * K, y + o * K, gn[o], eps, K, st + o * kStats);
      } else if constexpr (std::is_same_v<OutT, float>) {
        kt.ws_fwd_row(w + o * K, y + o * K, nullptr, K, double(gn[o]), eps, st + o * kStats);
      } else {
        kt.ws_fwd_row(w + o * K, nullptr, reinterpret_cast<fk::bf16_t*>(y + o * K), K, double(gn[o]), eps,
                      st + o * kStats);
      }
    }
  });
}

// All O rows: g [O, K] G, w, dw [O, K] T, gain, dgain [O] T, stats [O, 3].
template <typename T, typename G>
void ws_bwd_rows(const Tensor& g, const Tensor& weight, const Tensor& gain, Tensor& dw, Tensor& dgain,
                 const double* st) {
  const int64_t O = weight.size(0), K = weight.numel() / O;
  const G* gp = g.data_ptr<G>();
  const T *w = weight.data_ptr<T>(), *gn = gain.data_ptr<T>();
  T *dwp = dw.data_ptr<T>(), *dgp = dgain.data_ptr<T>();
  const fk::KernelTable& kt = fk::fused_kernel_table();
  at::parallel_for(0, O, ws_grain(K), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      double dgain = 0.0;
      if constexpr (std::is_same_v<T, double>) {
        dgain = ws_bwd_row_d(gp + o * K, w + o * K, dwp + o * K, gn[o], K, st + o * kStats);
      } else if constexpr (std::is_same_v<G, float>) {
        dgain = kt.ws_bwd_row_f32(gp + o * K, w + o * K, dwp + o * K, K, double(gn[o]), st + o * kStats);
      } else {
        dgain = kt.ws_bwd_row_bf16(reinterpret_cast<const fk::bf16_t*>(gp + o * K), w + o * K, dwp + o * K, K,
                                   double(gn[o]), st + o * kStats);
      }
      dgp[o] = T(dgain);
    }
  });
}

// The output dtypes the kernel writes for a weight dtype: its own; bf16 too for fp32 (the bf16 autocast weight).
bool ws_out_dtype_ok(at::ScalarType weight_dtype, at::ScalarType out_dtype) {
  return out_dtype == weight_dtype || (weight_dtype == at::kFloat && out_dtype == at::kBFloat16);
}

class StandardizeWeightFn : public torch::autograd::Function<StandardizeWeightFn> {
 public:
  // weight [O, I/g, kh, kw] contiguous, gain [O] contiguous, both fp32 or both fp64; out_dtype the weight's, or
  // bf16 for fp32 weights (ws_out_dtype_ok). Returns [O, I/g, kh, kw] contiguous in out_dtype.
  static Tensor forward(AutogradContext* ctx, const Tensor& weight, const Tensor& gain, double eps,
                        at::ScalarType out_dtype) {
    const int64_t O = weight.size(0);
    // [O, I/g, kh, kw] in out_dtype
    Tensor out = at::empty_like(weight, weight.options().dtype(out_dtype), at::MemoryFormat::Contiguous);
    Tensor stats = torch::empty({O, kStats}, weight.options().dtype(at::kDouble));  // [O, 3]
    double* st = stats.data_ptr<double>();
    if (weight.scalar_type() == at::kDouble) {
      ws_fwd_rows<double, double>(weight, gain, out, eps, st);
    } else if (out_dtype == at::kBFloat16) {
      ws_fwd_rows<float, c10::BFloat16>(weight, gain, out, eps, st);
    } else {
      ws_fwd_rows<float, float>(weight, gain, out, eps, st);
    }
    ctx->save_for_backward({weight, gain, stats});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &weight = saved[0], &gain = saved[1], &stats = saved[2];  // [O, I/g, kh, kw], [O], [O, 3]
    const auto wt = weight.scalar_type();
    // The incoming gradient is read in its own dtype when the kernel takes it (the weight's, or bf16 for fp32
    // weights: the bf16 autocast output's gradient), without a converted copy; any other dtype is converted.
    // conv2d's weight gradient can come channels_last: the rows must be in weight's (I/g, kh, kw) order.
    Tensor g = grads[0];  // [O, I/g, kh, kw]
    if (!ws_out_dtype_ok(wt, g.scalar_type())) g = g.to(wt);
    g = g.contiguous();
    Tensor dw = at::empty_like(weight, at::MemoryFormat::Contiguous);  // [O, I/g, kh, kw], weight's dtype
    Tensor dgain = at::empty_like(gain);                                // [O]
    const double* st = stats.data_ptr<double>();
    if (wt == at::kDouble) {
      ws_bwd_rows<double, double>(g, weight, gain, dw, dgain, st);
    } else if (g.scalar_type() == at::kBFloat16) {
      ws_bwd_rows<float, c10::BFloat16>(g, weight, gain, dw, dgain, st);
    } else {
      ws_bwd_rows<float, float>(g, weight, gain, dw, dgain, st);
    }
    return {dw, dgain, Tensor(), Tensor()};
  }
};

std::atomic<int> g_fused_override{-1};  // -1: not set, 0/1: set_fused_ops

// Max |kernel - fp64 reference| / tolerance over fixed inputs, for one kernel table; <= 1 passes.
double self_check_error(const fk::KernelTable& k) {
  std::mt19937 rng(12345);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const int64_t n = 1037;  // not a multiple of any vector width: exercises the tails
  std::vector<float> x(n), g(n), y(n), gx(n);
  for (int64_t i = 0; i < n; ++i) { x[i] = i < 8 ? float(i) * 4.0f - 16.0f : nd(rng); g[i] = nd(rng); }
  const float scale = 1.7015043497085571f;
  k.gelu_fwd_f32(x.data(), y.data(), n, scale);
  k.gelu_bwd_f32(g.data(), x.data(), gx.data(), n, scale);
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double ry = scale * gelu_d(x[i]), rg = double(g[i]) * scale * gelu_grad_d(x[i]);
    worst = std::max(worst, std::abs(y[i] - ry) / (2e-6 * (1.0 + std::abs(ry))));
    worst = std::max(worst, std::abs(gx[i] - rg) / (2e-6 * (1.0 + std::abs(rg))));
  }
  // bf16: inputs exactly representable, one rounding of the fp32 result (relative 2^-8) allowed.
  std::vector<fk::bf16_t> xb(n), yb(n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u; std::memcpy(&u, &x[i], 4); xb[i] = fk::bf16_t(u >> 16);
  }
  k.gelu_fwd_bf16(xb.data(), yb.data(), n, scale);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t ux = uint32_t(xb[i]) << 16, uy = uint32_t(yb[i]) << 16;
    float xf, yf; std::memcpy(&xf, &ux, 4); std::memcpy(&yf, &uy, 4);
    const double ry = scale * gelu_d(xf);
    worst = std::max(worst, std::abs(yf - ry) / (std::ldexp(1.0, -8) * std::abs(ry) + 1e-12));
  }
  // residual tail, both layouts: 3 x 19 image, coef per row / per column.
  for (bool per_col : {false, true}) {
    const fk::TailShape s{3, 19, per_col};
    std::vector<float> sc(57), br(57), out(57), dbr(57), coef(per_col ? 19 : 3), dot(coef.size(), 0.0f);
    for (int i = 0; i < 57; ++i) { sc[i] = nd(rng); br[i] = nd(rng); g[i] = nd(rng); }
    for (auto& c : coef) c = nd(rng);
    k.tail_fwd_f32(sc.data(), br.data(), out.data(), coef.data(), s);
    k.tail_bwd_f32(g.data(), br.data(), dbr.data(), coef.data(), dot.data(), s);
    std::vector<double> rdot(coef.size(), 0.0);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 19; ++c) {
        const int i = r * 19 + c, kk = per_col ? c : r;
        const double ro = sc[i] + double(coef[kk]) * br[i], rd = double(coef[kk]) * g[i];
        worst = std::max(worst, std::abs(out[i] - ro) / (2e-6 * (1.0 + std::abs(ro))));
        worst = std::max(worst, std::abs(dbr[i] - rd) / (2e-6 * (1.0 + std::abs(rd))));
        rdot[kk] += double(g[i]) * br[i];
      }
    for (size_t kk = 0; kk < rdot.size(); ++kk)
      worst = std::max(worst, std::abs(dot[kk] - rdot[kk]) / (1e-5 * (1.0 + std::abs(rdot[kk]))));
  }
  // weight standardisation, one row of 1037 fp32 weights (every loop and tail): statistics, output and backward
  // against the fp64 rows on the same (widened) inputs.
  {
    std::vector<float> w(n), o(n), dw(n);
    std::vector<double> wd(n), gd(n), od(n), dwd(n);
    for (int64_t i = 0; i < n; ++i) { w[i] = 0.05f * nd(rng); wd[i] = w[i]; gd[i] = g[i]; }
    double st[3], std_[3];
    k.ws_fwd_row(w.data(), o.data(), nullptr, n, 1.3, 1e-4, st);
    ws_fwd_row_d(wd.data(), od.data(), 1.3, 1e-4, n, std_);
    const double dgain = k.ws_bwd_row_f32(g.data(), w.data(), dw.data(), n, 1.3, st);
    const double dgain_d = ws_bwd_row_d(gd.data(), wd.data(), dwd.data(), 1.3, n, std_);
    for (int i = 0; i < 2; ++i) worst = std::max(worst, std::abs(st[i] - std_[i]) / (1e-12 * (1.0 + std::abs(std_[i]))));
    worst = std::max(worst, st[2] == std_[2] ? 0.0 : 2.0);
    worst = std::max(worst, std::abs(dgain - dgain_d) / (1e-9 * (1.0 + std::abs(dgain_d))));
    for (int64_t i = 0; i < n; ++i) {
      worst = std::max(worst, std::abs(o[i] - od[i]) / (2e-6 * (1.0 + std::abs(od[i]))));
      worst = std::max(worst, std::abs(dw[i] - dwd[i]) / (2e-6 * (1.0 + std::abs(dwd[i]))));
    }
  }
  return worst;
}

}  // namespace

namespace fused {
const KernelTable& fused_kernel_table() {
  return table_for_kernel_isa(&kernels_generic, &kernels_avx2, &kernels_avx512);
}
}  // namespace fused

bool fused_self_check() {
  static const bool ok = [] {
    const double err = self_check_error(fk::fused_kernel_table());
    if (!(err <= 1.0)) {
      std::fprintf(stderr, "[nfscale] fused %s kernels failed their self-check (error %.3g x tolerance); "
                           "using the unfused ops\n", fk::fused_kernel_table().isa, err);
      return false;
    }
    return true;
  }();
  return ok;
}

bool fused_ops_enabled() {
  const int o = g_fused_override.load();
  if (o >= 0) return o == 1;
  static const bool by_default = [] {
    const char* env = std::getenv("NFSCALE_FUSED");
    if (env && std::string(env) == "0") return false;
    return fused_self_check();
  }();
  return by_default;
}

void set_fused_ops(bool enabled) { g_fused_override.store(enabled ? 1 : 0); }

std::string fused_ops_status() {
  const std::string isa = fk::fused_kernel_table().isa;
  if (fused_ops_enabled())
    return std::string("fused ops on (") + isa + " kernels; direct 3x3 convs " +
           (conv3x3_kernels_enabled() ? "on, " + conv3x3_isa() : std::string("off")) + "; dense small-channel 3x3 convs " +
           (dense_conv3x3_kernels_enabled() ? "on, " + dense_conv3x3_isa() : std::string("off")) + ")";
  if (g_fused_override.load() == 0) return "fused ops off (set_fused_ops(false))";
  const char* env = std::getenv("NFSCALE_FUSED");
  if (env && std::string(env) == "0") return "fused ops off (NFSCALE_FUSED=0)";
  return "fused ops off (" + isa + " kernels failed the self-check)";
}

Tensor fused_scaled_gelu(const Tensor& x, double scale) { return ScaledGeluFn::apply(x, scale); }

ResidualTailCoef residual_tail_coef(const Tensor& gate, const Tensor& mask, const Tensor& skip_gain, double alpha,
                                    at::ScalarType map_dtype) {
  const auto ct = map_dtype == at::kDouble ? at::kDouble : at::kFloat;  // coefficient / compute dtype
  const int64_t B = gate.size(0);
  ResidualTailCoef c;
  c.ms = torch::full({B, 1}, 2.0 * alpha, gate.options().dtype(ct));  // [B,1] = 2 alpha mask
  c.ms = c.ms * mask.to(ct).view({B, 1});
  c.unit = gate.to(ct) * c.ms;                    // [B,C] = 2 alpha gate mask
  c.sg = skip_gain.to(ct);                        // []
  c.coef = (c.unit * c.sg).contiguous();          // [B,C] = 2 alpha skip_gain gate mask
  return c;
}

namespace {
// Runs f(b, o) for every image b of a [B,C,H,W] map, o the offset of its first element, in parallel over images.
template <typename F>
void for_each_image(const Tensor& map, const F& f) {
  const int64_t img = map.size(1) * map.size(2) * map.size(3);
  at::parallel_for(0, map.size(0), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b, b * img);
  });
}
const fk::bf16_t* bf16_of(const Tensor& t) { return reinterpret_cast<const fk::bf16_t*>(t.data_ptr<at::BFloat16>()); }
fk::bf16_t* bf16_of(Tensor& t) { return reinterpret_cast<fk::bf16_t*>(t.data_ptr<at::BFloat16>()); }
}  // namespace

Tensor residual_tail_pass(const Tensor& shortcut, const Tensor& branch, const Tensor& coef) {
  // shortcut, branch [B,C,H,W] same dtype and strides; coef [B,C] contiguous (fp64 for fp64 maps, else fp32)
  const auto st = branch.scalar_type();
  const int64_t C = branch.size(1);
  Tensor out = at::empty_like(branch);
  const fk::TailShape s = tail_shape(branch);
  const auto& k = fk::fused_kernel_table();
  for_each_image(branch, [&](int64_t b, int64_t o) {
    if (st == at::kDouble) {
      tail_fwd_d(shortcut.data_ptr<double>() + o, branch.data_ptr<double>() + o, out.data_ptr<double>() + o,
                 coef.data_ptr<double>() + b * C, s);
    } else if (st == at::kFloat) {
      k.tail_fwd_f32(shortcut.data_ptr<float>() + o, branch.data_ptr<float>() + o, out.data_ptr<float>() + o,
                     coef.data_ptr<float>() + b * C, s);
    } else {
      k.tail_fwd_bf16(bf16_of(shortcut) + o, bf16_of(branch) + o, bf16_of(out) + o, coef.data_ptr<float>() + b * C, s);
    }
  });
  return out;
}

void residual_tail_grad_pass(const Tensor& grad, const Tensor& branch, const Tensor& coef, Tensor& dbr, Tensor& dot) {
  // grad, branch [B,C,H,W] same dtype; coef [B,C] contiguous -> dbr (branch's strides), dot [B,C] (coef's dtype)
  const Tensor g = same_strides(grad, branch);  // a copy only when the layouts differ
  const auto st = branch.scalar_type();
  const int64_t C = branch.size(1);
  dbr = at::empty_like(branch);
  dot = torch::zeros({branch.size(0), C}, coef.options());  // sum over H,W of g * branch
  const fk::TailShape s = tail_shape(branch);
  const auto& k = fk::fused_kernel_table();
  for_each_image(branch, [&](int64_t b, int64_t o) {
    if (st == at::kDouble) {
      tail_bwd_d(g.data_ptr<double>() + o, branch.data_ptr<double>() + o, dbr.data_ptr<double>() + o,
                 coef.data_ptr<double>() + b * C, dot.data_ptr<double>() + b * C, s);
    } else if (st == at::kFloat) {
      k.tail_bwd_f32(g.data_ptr<float>() + o, branch.data_ptr<float>() + o, dbr.data_ptr<float>() + o,
                     coef.data_ptr<float>() + b * C, dot.data_ptr<float>() + b * C, s);
    } else {
      k.tail_bwd_bf16(bf16_of(g) + o, bf16_of(branch) + o, bf16_of(dbr) + o, coef.data_ptr<float>() + b * C,
                      dot.data_ptr<float>() + b * C, s);
    }
  });
}

Tensor fused_residual_tail(const Tensor& shortcut, const Tensor& branch, const Tensor& gate, const Tensor& mask,
                           const Tensor& skip_gain, double alpha) {
  TORCH_CHECK(branch.dim() == 4 && shortcut.sizes() == branch.sizes(), "fused_residual_tail: shortcut ",
              shortcut.sizes(), " and branch ", branch.sizes(), " must both be [B,C,H,W]");
  TORCH_CHECK(gate.dim() == 2 && gate.size(0) == branch.size(0) && gate.size(1) == branch.size(1),
              "fused_residual_tail: gate must be [B,C], got ", gate.sizes());
  TORCH_CHECK(!mask.defined() || mask.numel() == branch.size(0), "fused_residual_tail: mask must have B elements");
  const auto st = branch.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kBFloat16 || st == at::kDouble, "fused_residual_tail: unsupported dtype ", st);
  // One dense layout for both streams (channels_last if the branch is; NCHW otherwise); autograd handles the copies.
  // (suggest_memory_format, not is_contiguous: a channels_last [B,C,1,1] map is also NCHW-contiguous)
  const auto fmt = branch.suggest_memory_format();
  const Tensor br = branch.contiguous(fmt);
  const Tensor sc = shortcut.to(st).contiguous(fmt);
  // (autograd Function inputs must be defined tensors: no mask = a mask of ones)
  const Tensor m = mask.defined() ? mask.reshape({-1}) : torch::ones({branch.size(0)}, gate.options());  // [B]
  return ResidualTailFn::apply(sc, br, gate, m, skip_gain, alpha);
}

bool fused_standardize_weight_supports(const Tensor& weight, const Tensor& gain) {
  const auto st = weight.scalar_type();
  return (st == at::kFloat || st == at::kDouble) && weight.device().is_cpu() && weight.layout() == at::kStrided &&
         weight.dim() == 4 && weight.numel() > 0 && weight.is_contiguous() && gain.scalar_type() == st &&
         gain.device().is_cpu() && gain.dim() == 1 && gain.numel() == weight.size(0) && gain.is_contiguous();
}

Tensor fused_standardize_weight(const Tensor& weight, const Tensor& gain, double eps,
                                c10::optional<at::ScalarType> out_dtype) {
  TORCH_CHECK(!out_dtype || at::isFloatingType(*out_dtype),
              "fused_standardize_weight: out_dtype must be a floating type, got ", *out_dtype);
  const auto st = weight.scalar_type();
  const auto to_out = [&](const Tensor& y) { return out_dtype ? y.to(*out_dtype) : y; };
  // (standardize_weight takes this path only for supported inputs, so the fallback cannot come back here)
  if (!fused_standardize_weight_supports(weight, gain)) return to_out(standardize_weight(weight, gain, eps));
  // an output dtype the kernel does not write (fp64 -> bf16, fp32 -> fp64, ...): the kernel's own dtype, then a cast
  if (out_dtype && !ws_out_dtype_ok(st, *out_dtype))
    return to_out(StandardizeWeightFn::apply(weight, gain, eps, st));
  return StandardizeWeightFn::apply(weight, gain, eps, out_dtype.value_or(st));
}

}  // namespace nfscale::models
