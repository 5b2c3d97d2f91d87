// fused_kernels.h - raw element-wise kernels behind the fused NFNet ops (fused_ops.h): gamma-scaled tanh-GELU and
// the residual tail "out = shortcut + coef * branch" (coef per channel), forward and backward, for fp32 and bf16
// storage (fp32 compute). Three builds of the same code (fused_kernels_impl.h): AVX-512, AVX2+FMA, baseline x86-64;
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
};

const KernelTable& kernels_avx512();
const KernelTable& kernels_avx2();
const KernelTable& kernels_generic();
// The widest table the CPU supports (cpu_features.h); NFSCALE_FUSED_ISA=generic|avx2|avx512 forces a narrower one.
const KernelTable& fused_kernel_table();

}  // namespace nfscale::models::fused
