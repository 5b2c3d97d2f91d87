// fused_kernels.h - raw element-wise kernels behind the fused NFNet ops (fused_ops.h): gamma-scaled tanh-GELU and
// the residual tail "out = shortcut + coef * branch" (coef per channel), forward and backward, for fp32 and bf16
// storage (fp32 compute), and the weight standardisation rows of fp32 weights (double statistics). Three builds of the same code (fused_kernels_impl.h): AVX-512, AVX2+FMA, baseline x86-64;
// fused_kernel_table() picks the widest this CPU supports. No torch types here: plain pointers, dense buffers.
#pragma once
#include <cstdint>

namespace nfscale::models::fused {

using bf16_t = uint16_t;  // raw bfloat16 bits (c10::BFloat16 layout); conversion rounds to nearest even

// Residual tail layout of one image [C, H, W]: rows x cols, coef indexed by row (NCHW: rows = C, cols = H*W) or by
// column (channels_last: rows = H*W, cols = C).
struct TailShape {
  int64_t rows = 0, cols = 0;
  bool coef_per_col = false;
};

struct KernelTable {
  const char* isa;  // "avx512", "avx2", "generic"
  // y[i] = scale * gelu_tanh(x[i]), i < n.
  void (*gelu_fwd_f32)(const float* x, float* y, int64_t n, float scale);
  void (*gelu_fwd_bf16)(const bf16_t* x, bf16_t* y, int64_t n, float scale);
  // gx[i] = g[i] * scale * gelu_tanh'(x[i]).
  void (*gelu_bwd_f32)(const float* g, const float* x, float* gx, int64_t n, float scale);
  void (*gelu_bwd_bf16)(const bf16_t* g, const bf16_t* x, bf16_t* gx, int64_t n, float scale);
  // One image: out = sc + coef (.) br, coef [rows] or [cols] (fp32).
  void (*tail_fwd_f32)(const float* sc, const float* br, float* out, const float* coef, TailShape s);
  void (*tail_fwd_bf16)(const bf16_t* sc, const bf16_t* br, bf16_t* out, const float* coef, TailShape s);
  // One image: dbr = coef (.) g; dot[k] += sum of g*br over row k (per-row coef) or column k (per-column coef).
  void (*tail_bwd_f32)(const float* g, const float* br, float* dbr, const float* coef, float* dot, TailShape s);
  void (*tail_bwd_bf16)(const bf16_t* g, const bf16_t* br, bf16_t* dbr, const float* coef, float* dot, TailShape s);
  // Weight standardisation of one output channel of fp32 weights, w [K]: mean and S = sum (w - mean)^2 in double,
  // r = 1 / sqrt(max(S, eps)); writes out = fp32(gain r (w - mean)) to out_f32, or that value rounded once more to
  // out_bf16 (exactly one of the two is non-null), and st[3] = {mean, r, S >= eps ? 1 : 0}.
  void (*ws_fwd_row)(const float* w, float* out_f32, bf16_t* out_bf16, int64_t K, double gain, double eps,
                     double* st);
  // Its backward for an fp32 / bf16 incoming gradient g [K]: with u = w - mean,
  // dw = fp32(gain (r (g - mean(g)) - st[2] r^3 u sum_k g_k u_k)); returns dgain = r sum_k g_k u_k (sums in double).
  double (*ws_bwd_row_f32)(const float* g, const float* w, float* dw, int64_t K, double gain, const double* st);
  double (*ws_bwd_row_bf16)(const bf16_t* g, const float* w, float* dw, int64_t K, double gain, const double* st);
};

const KernelTable& kernels_avx512();
const KernelTable& kernels_avx2();
const KernelTable& kernels_generic();
// The table for util/cpu_features.h kernel_isa(): the widest the CPU supports, or NFSCALE_FUSED_ISA=generic|avx2.
const KernelTable& fused_kernel_table();

}  // namespace nfscale::models::fused
