// grouped_conv3x3.cpp - autograd function, fp64 reference loops, weight packing, ISA selection, self-check and switch
// of the direct 3x3 / 16-channel-group convolution (grouped_conv3x3.h, kernels: conv3x3_kernels.h).
// NFSCALE_NO_UNITY: compiled alone (its kernel-route helpers g_route / table() / kCL mirror dense_conv3x3.cpp's).
#include "nfscale/models/grouped_conv3x3.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "nfscale/models/conv3x3_kernels.h"
#include "nfscale/models/kernel_route.h"

namespace nfscale::models {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace c3 = conv3x3;
constexpr auto kCL = at::MemoryFormat::ChannelsLast;

// ---- ISA selection and switch (kernel_route.h) -----------------------------------------------------------------
double self_check(const c3::Table& k);
KernelRoute<c3::Table> g_route("3x3 conv", "NFSCALE_CONV3X3", &c3::table_generic, &c3::table_avx2,
                               &c3::table_avx512, &self_check);
const c3::Table& table() { return g_route.table(); }

// ---- geometry and packing ------------------------------------------------------------------------------------
c3::Shape shape_of(const Tensor& x, int64_t stride, int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w) {
  c3::Shape s;
  s.B = x.size(0); s.C = x.size(1); s.H = x.size(2); s.W = x.size(3);
  s.Ho = out_h; s.Wo = out_w; s.stride = stride; s.pad_top = pad_top; s.pad_left = pad_left;
  return s;
}

// w [C, 16 (ci), 3, 3] -> [G, 9, 16 (ci), 16 (co)] (forward) or [G, 9, 16 (co), 16 (ci)] (input gradient).
Tensor pack_ci_co(const Tensor& w) { return w.reshape({-1, 16, 16, 9}).permute({0, 3, 2, 1}).contiguous(); }
Tensor pack_co_ci(const Tensor& w) { return w.reshape({-1, 16, 16, 9}).permute({0, 3, 1, 2}).contiguous(); }
// dwp [G, 9, 16 (ci), 16 (co)] -> dw [C, 16, 3, 3].
Tensor unpack_ci_co(const Tensor& dwp) {
  const int64_t G = dwp.size(0);
  return dwp.permute({0, 3, 2, 1}).reshape({G * 16, 16, 3, 3}).contiguous();
}

// ---- fp64 reference loops (channels_last storage, straight from the definition) -------------------------------
// x [B, H, W, C], w [C, 16, 3, 3], y [B, Ho, Wo, C]; the input pixel of output (oh, ow) and tap (kh, kw), or -1.
int64_t src_pixel(const c3::Shape& s, int64_t oh, int64_t ow, int kh, int kw) {
  const int64_t ih = oh * s.stride + kh - s.pad_top, iw = ow * s.stride + kw - s.pad_left;
  return (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) ? -1 : ih * s.W + iw;
}

template <typename F>
void for_each_tap(const c3::Shape& s, F f) {  // f(b, out pixel, in pixel, tap)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t oh = 0; oh < s.Ho; ++oh)
      for (int64_t ow = 0; ow < s.Wo; ++ow)
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            const int64_t ip = src_pixel(s, oh, ow, kh, kw);
            if (ip >= 0) f(b, oh * s.Wo + ow, ip, kh * 3 + kw);
          }
}

template <typename T>
void ref_fwd(const T* x, const T* w, const T* bias, T* y, const c3::Shape& s) {
  const int64_t C = s.C, HW = s.H * s.W, HWo = s.Ho * s.Wo;
  for (int64_t i = 0; i < s.B * HWo; ++i)
    for (int64_t c = 0; c < C; ++c) y[i * C + c] = bias ? bias[c] : T(0);
  for_each_tap(s, [&](int64_t b, int64_t op, int64_t ip, int t) {
    const T* xp = x + (b * HW + ip) * C;
    T* yp = y + (b * HWo + op) * C;
    for (int64_t co = 0; co < C; ++co) {
      const int64_t g0 = co / 16 * 16;
      T acc = 0;
      for (int ci = 0; ci < 16; ++ci) acc += xp[g0 + ci] * w[(co * 16 + ci) * 9 + t];
      yp[co] += acc;
    }
  });
}

template <typename T>
void ref_bwd(const T* dy, const T* x, const T* w, T* dx, T* dw, T* db, const c3::Shape& s) {
  const int64_t C = s.C, HW = s.H * s.W, HWo = s.Ho * s.Wo;
  std::fill(dx, dx + s.B * HW * C, T(0));
  std::fill(dw, dw + C * 16 * 9, T(0));
  std::fill(db, db + C, T(0));
  for (int64_t i = 0; i < s.B * HWo; ++i)
    for (int64_t c = 0; c < C; ++c) db[c] += dy[i * C + c];
  for_each_tap(s, [&](int64_t b, int64_t op, int64_t ip, int t) {
    const T* xp = x + (b * HW + ip) * C;
    T* dxp = dx + (b * HW + ip) * C;
    const T* gp = dy + (b * HWo + op) * C;
    for (int64_t co = 0; co < C; ++co) {
      const int64_t g0 = co / 16 * 16;
      for (int ci = 0; ci < 16; ++ci) {
        dxp[g0 + ci] += gp[co] * w[(co * 16 + ci) * 9 + t];
        dw[(co * 16 + ci) * 9 + t] += gp[co] * xp[g0 + ci];
      }
    }
  });
}

// ---- fp32 kernels over whole tensors --------------------------------------------------------------------------
constexpr int64_t kImagesPerTask = 16;  // images per parallel chunk (forward, input gradient)

void kernel_fwd(const c3::Table& k, const float* x, const Tensor& w, const float* bias, float* y, const c3::Shape& s) {
  const Tensor wp = pack_ci_co(w);  // [G, 9, 16, 16]
  const float* wpp = wp.data_ptr<float>();
  at::parallel_for(0, s.B, kImagesPerTask, [&](int64_t b0, int64_t b1) { k.fwd(x, wpp, bias, y, s, b0, b1); });
}

void kernel_bwd(const c3::Table& k, const float* dy, const float* x, const Tensor& w, float* dx, float* dw, float* db,
                const c3::Shape& s) {
  const int64_t G = s.groups();
  if (dx) {
    const Tensor wt = pack_co_ci(w);  // [G, 9, 16, 16]
    const float* wtp = wt.data_ptr<float>();
    at::parallel_for(0, s.B, kImagesPerTask, [&](int64_t b0, int64_t b1) { k.bwd_data(dy, wtp, dx, s, b0, b1); });
  }
  if (dw) {
    Tensor dwp = torch::empty({G, 9, 16, 16}, torch::kFloat);
    float* dwpp = dwp.data_ptr<float>();
    at::parallel_for(0, G * 9, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) k.bwd_weight(dy, x, dwpp + u * 256, s, u / 9, u % 9);
    });
    const Tensor dwu = unpack_ci_co(dwp);
    std::copy(dwu.data_ptr<float>(), dwu.data_ptr<float>() + dwu.numel(), dw);
  }
  if (db) k.bias_grad(dy, db, s.B * s.Ho * s.Wo, s.C);
}

// ---- autograd -------------------------------------------------------------------------------------------------
class GroupedConv3x3Fn : public torch::autograd::Function<GroupedConv3x3Fn> {
 public:
  // x [B, C, H, W] channels_last-contiguous, w [C, 16, 3, 3] contiguous, bias [C] contiguous; same dtype.
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride,
                        int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w) {
    const c3::Shape s = shape_of(x, stride, pad_top, pad_left, out_h, out_w);
    Tensor y = torch::empty({s.B, s.C, s.Ho, s.Wo}, x.options().memory_format(kCL));  // [B, C, Ho, Wo] channels_last
    if (x.scalar_type() == at::kDouble) {
      ref_fwd(x.data_ptr<double>(), w.data_ptr<double>(), bias.data_ptr<double>(), y.data_ptr<double>(), s);
    } else {
      kernel_fwd(table(), x.data_ptr<float>(), w, bias.data_ptr<float>(), y.data_ptr<float>(), s);
    }
    ctx->save_for_backward({x, w});
    ctx->saved_data["geom"] = std::vector<int64_t>{stride, pad_top, pad_left, out_h, out_w};
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &w = saved[1];
    const auto geom = ctx->saved_data["geom"].toIntVector();
    const c3::Shape s = shape_of(x, geom[0], geom[1], geom[2], geom[3], geom[4]);
    const Tensor dy = grads[0].to(x.scalar_type()).contiguous(kCL);  // [B, C, Ho, Wo] channels_last
    const bool need_dx = ctx->needs_input_grad(0), need_dw = ctx->needs_input_grad(1),
               need_db = ctx->needs_input_grad(2);
    Tensor dx = need_dx ? torch::empty_like(x, x.options().memory_format(kCL)) : Tensor();
    Tensor dw = need_dw ? torch::empty_like(w) : Tensor();
    Tensor db = need_db ? torch::empty({s.C}, w.options()) : Tensor();
    if (x.scalar_type() == at::kDouble) {
      // the reference computes all three; keep what autograd asked for
      Tensor rdx = torch::empty_like(x, x.options().memory_format(kCL)), rdw = torch::empty_like(w),
             rdb = torch::empty({s.C}, w.options());
      ref_bwd(dy.data_ptr<double>(), x.data_ptr<double>(), w.data_ptr<double>(), rdx.data_ptr<double>(),
              rdw.data_ptr<double>(), rdb.data_ptr<double>(), s);
      return {need_dx ? rdx : Tensor(), need_dw ? rdw : Tensor(), need_db ? rdb : Tensor(), Tensor(), Tensor(),
              Tensor(), Tensor(), Tensor()};
    }
    kernel_bwd(table(), dy.data_ptr<float>(), x.data_ptr<float>(), w, need_dx ? dx.data_ptr<float>() : nullptr,
               need_dw ? dw.data_ptr<float>() : nullptr, need_db ? db.data_ptr<float>() : nullptr, s);
    return {dx, dw, db, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// ---- self-check -----------------------------------------------------------------------------------------------
// One random problem per stride (B = 19 images: every register block size; G = 2; odd and even extents; SAME pads)
// through the kernels and the fp64 loops; tolerance 1e-5 x the largest reference magnitude of each tensor (fp32 sums
// of <= 144 products of O(1) numbers; weight gradient sums over up to 19 * 20 pixels).
double self_check(const c3::Table& k) {
  std::mt19937 rng(4321);
  double worst = 0.0;
  for (int64_t stride : {1, 2}) {
    c3::Shape s;
    s.B = 19; s.C = 32; s.H = 5; s.W = 4; s.stride = stride;
    s.Ho = (s.H + stride - 1) / stride; s.Wo = (s.W + stride - 1) / stride;
    s.pad_top = std::max<int64_t>((s.Ho - 1) * stride + 3 - s.H, 0) / 2;
    s.pad_left = std::max<int64_t>((s.Wo - 1) * stride + 3 - s.W, 0) / 2;
    const auto ref = [&](const double* x, const double* w, const double* b, const double* dy, double* y, double* dx,
                         double* dw, double* db) {
      ref_fwd(x, w, b, y, s);
      ref_bwd(dy, x, w, dx, dw, db, s);
    };
    const auto kern = [&](const float* x, const float* w, const float* b, const float* dy, float* y, float* dx,
                          float* dw, float* db) {
      const Tensor wt = torch::from_blob(const_cast<float*>(w), {s.C, 16, 3, 3}, torch::kFloat);
      kernel_fwd(k, x, wt, b, y, s);
      kernel_bwd(k, dy, x, wt, dx, dw, db, s);
    };
    worst = std::max(worst, self_check_problem(rng, s.B * s.H * s.W * s.C, s.C * 16 * 9, s.C,
                                               s.B * s.Ho * s.Wo * s.C, ref, kern));
  }
  return worst;
}

}  // namespace

Tensor grouped_conv3x3(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t pad_top,
                       int64_t pad_left, int64_t out_h, int64_t out_w) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) % 16 == 0 && x.size(1) > 0, "grouped_conv3x3: x must be [B, 16 * G, H, W], got ",
              x.sizes());
  TORCH_CHECK(w.dim() == 4 && w.size(0) == x.size(1) && w.size(1) == 16 && w.size(2) == 3 && w.size(3) == 3,
              "grouped_conv3x3: w must be [", x.size(1), ", 16, 3, 3], got ", w.sizes());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == x.size(1), "grouped_conv3x3: bias must be [", x.size(1), "]");
  const auto st = x.scalar_type();
  TORCH_CHECK((st == at::kFloat || st == at::kDouble) && w.scalar_type() == st && bias.scalar_type() == st,
              "grouped_conv3x3: x, w and bias must all be fp32 or all fp64");
  TORCH_CHECK(stride >= 1 && pad_top >= 0 && pad_left >= 0 && pad_top <= 2 && pad_left <= 2 && out_h >= 1 &&
                  out_w >= 1 && (out_h - 1) * stride - pad_top < x.size(2) && (out_w - 1) * stride - pad_left < x.size(3),
              "grouped_conv3x3: bad geometry");
  return GroupedConv3x3Fn::apply(x.contiguous(kCL), w.contiguous(), bias.contiguous(), stride, pad_top, pad_left, out_h,
                                 out_w);
}

bool grouped_conv3x3_applies(const Tensor& x, int64_t kernel, int64_t stride, int64_t groups, int64_t in_channels,
                             int64_t out_channels) {
  if (kernel != 3 || (stride != 1 && stride != 2) || in_channels != out_channels || in_channels != 16 * groups)
    return false;
  const auto st = x.scalar_type();
  const bool dtype_ok = st == at::kDouble || (st == at::kFloat && !cpu_bf16_autocast_on());
  if (!dtype_ok || !x.device().is_cpu() || x.dim() != 4 || x.size(1) != in_channels) return false;
  const int64_t out_pixels = ((x.size(2) + stride - 1) / stride) * ((x.size(3) + stride - 1) / stride);  // SAME
  return out_pixels <= kConv3x3MaxOutputPixels && x.is_contiguous(kCL) && conv3x3_kernels_enabled();
}

bool conv3x3_kernels_enabled() { return g_route.enabled(); }
void set_conv3x3_kernels(bool enabled) { g_route.set(enabled); }
std::string conv3x3_isa() { return g_route.table().isa; }
void force_conv3x3_isa(const std::string& isa) { g_route.force(isa); }
double conv3x3_self_check_error(const std::string& isa) { return g_route.self_check_error(isa); }

}  // namespace nfscale::models
