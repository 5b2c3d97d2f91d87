// dense_conv3x3.cpp - autograd function, fp64 reference loops, weight packing, ISA selection, self-check, switch and
// route of the dense small-channel 3x3 convolution, stride 1 or 2 (dense_conv3x3.h, kernels: dense_conv3x3_kernels.h).
#include "nfscale/models/dense_conv3x3.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "nfscale/models/dense_conv3x3_kernels.h"
#include "nfscale/models/kernel_route.h"
#include "nfscale/models/layers.h"

namespace nfscale::models {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace d3 = dense3x3;
constexpr auto kCL = at::MemoryFormat::ChannelsLast;

// ---- ISA selection and switch (kernel_route.h) -----------------------------------------------------------------
double self_check(const d3::Table& k);
KernelRoute<d3::Table> g_route("dense 3x3 conv", "NFSCALE_DENSE_CONV3X3", &d3::table_generic, &d3::table_avx2,
                               &d3::table_avx512, &self_check);
const d3::Table& table() { return g_route.table(); }

// ---- geometry and packing ------------------------------------------------------------------------------------
d3::Shape shape_of(int64_t B, int64_t C, int64_t H, int64_t W, int64_t O, int64_t stride) {
  d3::Shape s;
  s.B = B; s.C = C; s.H = H; s.W = W; s.O = O; s.stride = stride;
  const SamePad ph = same_padding(H, 3, stride), pw = same_padding(W, 3, stride);  // TF 'SAME', as WSConv2d pads
  s.Ho = ph.out; s.pad_top = ph.before;
  s.Wo = pw.out; s.pad_left = pw.before;
  return s;
}
// x [B, C, H, W], w [O, C, 3, 3]
d3::Shape shape_of(const Tensor& x, const Tensor& w, int64_t stride) {
  return shape_of(x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), stride);
}

// w [O, C, 3, 3] -> [C, 9, O] (forward) or [O, 9, C] (input gradient).
Tensor pack_forward(const Tensor& w) { return w.reshape({w.size(0), w.size(1), 9}).permute({1, 2, 0}).contiguous(); }
Tensor pack_backward(const Tensor& w) { return w.reshape({w.size(0), w.size(1), 9}).permute({0, 2, 1}).contiguous(); }

// ---- fp64 reference loops (channels_last storage, straight from the definition) -------------------------------
// x [B, H, W, C], w [O, C, 3, 3], y / dy [B, Ho, Wo, O]; f(b, out pixel, in pixel, tap) for every valid tap.
template <typename F>
void for_each_tap(const d3::Shape& s, F f) {
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t oh = 0; oh < s.Ho; ++oh)
      for (int64_t ow = 0; ow < s.Wo; ++ow)
        for (int t = 0; t < 9; ++t) {
          const int64_t ih = oh * s.stride + t / 3 - s.pad_top, iw = ow * s.stride + t % 3 - s.pad_left;
          if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) f(b, oh * s.Wo + ow, ih * s.W + iw, t);
        }
}

void ref_fwd(const double* x, const double* w, const double* bias, double* y, const d3::Shape& s) {
  const int64_t HW = s.H * s.W, HWo = s.Ho * s.Wo;
  for (int64_t i = 0; i < s.B * HWo; ++i)
    for (int64_t o = 0; o < s.O; ++o) y[i * s.O + o] = bias ? bias[o] : 0.0;
  for_each_tap(s, [&](int64_t b, int64_t op, int64_t ip, int t) {
    const double* xp = x + (b * HW + ip) * s.C;
    double* yp = y + (b * HWo + op) * s.O;
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t c = 0; c < s.C; ++c) yp[o] += xp[c] * w[(o * s.C + c) * 9 + t];
  });
}

void ref_bwd(const double* dy, const double* x, const double* w, double* dx, double* dw, double* db,
             const d3::Shape& s) {
  const int64_t HW = s.H * s.W, HWo = s.Ho * s.Wo;
  std::fill(dx, dx + s.B * HW * s.C, 0.0);
  std::fill(dw, dw + s.O * s.C * 9, 0.0);
  std::fill(db, db + s.O, 0.0);
  for (int64_t i = 0; i < s.B * HWo; ++i)
    for (int64_t o = 0; o < s.O; ++o) db[o] += dy[i * s.O + o];
  for_each_tap(s, [&](int64_t b, int64_t op, int64_t ip, int t) {
    const double* xp = x + (b * HW + ip) * s.C;
    double* dxp = dx + (b * HW + ip) * s.C;
    const double* gp = dy + (b * HWo + op) * s.O;
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t c = 0; c < s.C; ++c) {
        dxp[c] += gp[o] * w[(o * s.C + c) * 9 + t];
        dw[(o * s.C + c) * 9 + t] += gp[o] * xp[c];
      }
  });
}

// ---- fp32 kernels over whole tensors --------------------------------------------------------------------------
constexpr int64_t kImagesPerTask = 8;  // images per parallel chunk of the forward

void kernel_fwd(const d3::Table& k, const float* x, const Tensor& w, const float* bias, float* y, const d3::Shape& s) {
  const Tensor wp = pack_forward(w);  // [C, 9, O]
  const float* wpp = wp.data_ptr<float>();
  at::parallel_for(0, s.B, kImagesPerTask, [&](int64_t b0, int64_t b1) { k.fwd(x, wpp, bias, y, s, b0, b1); });
}

// The backward in one chunk of images per thread: each chunk's weight and bias gradients are summed afterwards.
void kernel_bwd(const d3::Table& k, const float* dy, const float* x, const Tensor& w, float* dx, float* dw, float* db,
                const d3::Shape& s) {
  const Tensor wt = pack_backward(w);  // [O, 9, C]
  const float* wtp = wt.data_ptr<float>();
  const int64_t nw = s.O * s.C * 9, chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), s.B));
  std::vector<float> part(chunks * (nw + s.O));  // per chunk: dw [O * C * 9], db [O]
  at::parallel_for(0, chunks, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* p = part.data() + i * (nw + s.O);
      k.bwd(dy, x, wtp, dx, p, p + nw, s, s.B * i / chunks, s.B * (i + 1) / chunks);
    }
  });
  for (int64_t j = 0; j < nw + s.O; ++j) {
    float sum = 0.0f;
    for (int64_t i = 0; i < chunks; ++i) sum += part[i * (nw + s.O) + j];
    (j < nw ? dw[j] : db[j - nw]) = sum;
  }
}

// ---- autograd -------------------------------------------------------------------------------------------------
class DenseConv3x3Fn : public torch::autograd::Function<DenseConv3x3Fn> {
 public:
  // x [B, C, H, W] channels_last-contiguous, w [O, C, 3, 3] contiguous, bias [O] contiguous; same dtype.
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride) {
    const d3::Shape s = shape_of(x, w, stride);
    Tensor y = torch::empty({s.B, s.O, s.Ho, s.Wo}, x.options().memory_format(kCL));  // [B, O, Ho, Wo] channels_last
    if (x.scalar_type() == at::kDouble) {
      ref_fwd(x.data_ptr<double>(), w.data_ptr<double>(), bias.data_ptr<double>(), y.data_ptr<double>(), s);
    } else {
      kernel_fwd(table(), x.data_ptr<float>(), w, bias.data_ptr<float>(), y.data_ptr<float>(), s);
    }
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &w = saved[1];
    const d3::Shape s = shape_of(x, w, ctx->saved_data["stride"].toInt());
    const Tensor dy = grads[0].to(x.scalar_type()).contiguous(kCL);  // [B, O, Ho, Wo] channels_last
    const bool need_dx = ctx->needs_input_grad(0);
    // the weight and bias gradients come out of the same pass (and the fp64 loops compute all three anyway)
    Tensor dx = torch::empty_like(x, x.options().memory_format(kCL)), dw = torch::empty_like(w),
           db = torch::empty({s.O}, w.options());
    if (x.scalar_type() == at::kDouble) {
      ref_bwd(dy.data_ptr<double>(), x.data_ptr<double>(), w.data_ptr<double>(), dx.data_ptr<double>(),
              dw.data_ptr<double>(), db.data_ptr<double>(), s);
    } else {
      kernel_bwd(table(), dy.data_ptr<float>(), x.data_ptr<float>(), w, need_dx ? dx.data_ptr<float>() : nullptr,
                 dw.data_ptr<float>(), db.data_ptr<float>(), s);
    }
    return {need_dx ? dx : Tensor(), ctx->needs_input_grad(1) ? dw : Tensor(), ctx->needs_input_grad(2) ? db : Tensor(),
            Tensor()};
  }
};

// ---- self-check -----------------------------------------------------------------------------------------------
// Random problems through the kernels and the fp64 loops: both strides, odd and even extents (stride 2: both pads),
// channel counts hitting every output-channel block (8, 4, 2, 1 and the weight gradient's pairs), map widths hitting
// every vector block and the tails, odd batches; tolerance 1e-5 x the largest reference magnitude of each tensor (fp32
// sums of <= 9 C products of O(1) numbers; weight gradient sums over up to B Ho Wo pixels).
double self_check(const d3::Table& k) {
  std::mt19937 rng(8765);
  double worst = 0.0;
  struct Case {
    int64_t B, C, O, H, W, stride;
  };
  const Case cases[] = {{3, 5, 15, 5, 7, 1}, {2, 8, 8, 4, 16, 1}, {3, 3, 1, 8, 8, 1}, {1, 16, 4, 6, 3, 1},
                        {3, 1, 8, 8, 10, 2}, {2, 8, 11, 7, 9, 2}, {3, 4, 16, 6, 5, 2}};
  for (const Case& c : cases) {
    const d3::Shape s = shape_of(c.B, c.C, c.H, c.W, c.O, c.stride);
    const auto ref = [&](const double* x, const double* w, const double* b, const double* dy, double* y, double* dx,
                         double* dw, double* db) {
      ref_fwd(x, w, b, y, s);
      ref_bwd(dy, x, w, dx, dw, db, s);
    };
    const auto kern = [&](const float* x, const float* w, const float* b, const float* dy, float* y, float* dx,
                          float* dw, float* db) {
      const Tensor wt = torch::from_blob(const_cast<float*>(w), {s.O, s.C, 3, 3}, torch::kFloat);
      kernel_fwd(k, x, wt, b, y, s);
      kernel_bwd(k, dy, x, wt, dx, dw, db, s);
    };
    worst = std::max(worst, self_check_problem(rng, s.B * s.H * s.W * s.C, s.O * s.C * 9, s.O,
                                               s.B * s.Ho * s.Wo * s.O, ref, kern));
  }
  return worst;
}

}  // namespace

Tensor dense_conv3x3(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride) {
  TORCH_CHECK(x.dim() == 4 && x.size(0) > 0 && x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0,
              "dense_conv3x3: x must be a non-empty [B, C, H, W], got ", x.sizes());
  TORCH_CHECK(w.dim() == 4 && w.size(0) > 0 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3,
              "dense_conv3x3: w must be [O, ", x.size(1), ", 3, 3], got ", w.sizes());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "dense_conv3x3: bias must be [", w.size(0), "], got ",
              bias.sizes());
  const auto st = x.scalar_type();
  TORCH_CHECK((st == at::kFloat || st == at::kDouble) && w.scalar_type() == st && bias.scalar_type() == st,
              "dense_conv3x3: x, w and bias must all be fp32 or all fp64, got ", st, ", ", w.scalar_type(), ", ",
              bias.scalar_type());
  TORCH_CHECK(x.device().is_cpu() && w.device().is_cpu() && bias.device().is_cpu(),
              "dense_conv3x3: tensors must be on the CPU");
  TORCH_CHECK(stride == 1 || stride == 2, "dense_conv3x3: stride must be 1 or 2, got ", stride);
  return DenseConv3x3Fn::apply(x.contiguous(kCL), w.contiguous(), bias.contiguous(), stride);
}

bool dense_conv3x3_applies(const Tensor& x, int64_t kernel, int64_t stride, int64_t groups, int64_t in_channels,
                           int64_t out_channels) {
  // the measured table (dense_conv3x3.h): {max in, max out, min extent, max extent} per stride
  struct Rule {
    int64_t in, out, lo, hi;
  };
  constexpr Rule kStride1 = {8, 8, 4, 16}, kStride2 = {8, 8, 8, 32};
  if (kernel != 3 || (stride != 1 && stride != 2) || groups != 1) return false;
  const Rule& r = stride == 1 ? kStride1 : kStride2;
  if (in_channels > r.in || out_channels > r.out) return false;
  const auto st = x.scalar_type();
  const bool dtype_ok = st == at::kDouble || (st == at::kFloat && !cpu_bf16_autocast_on());
  if (!dtype_ok || !x.device().is_cpu() || x.dim() != 4 || x.size(1) != in_channels) return false;
  const auto extent_ok = [&](int64_t n) { return n >= r.lo && n <= r.hi; };
  return extent_ok(x.size(2)) && extent_ok(x.size(3)) && x.is_contiguous(kCL) && dense_conv3x3_kernels_enabled();
}

bool dense_conv3x3_kernels_enabled() { return g_route.enabled(); }
void set_dense_conv3x3_kernels(bool enabled) { g_route.set(enabled); }
std::string dense_conv3x3_isa() { return g_route.table().isa; }
void force_dense_conv3x3_isa(const std::string& isa) { g_route.force(isa); }
double dense_conv3x3_self_check_error(const std::string& isa) { return g_route.self_check_error(isa); }

}  // namespace nfscale::models
