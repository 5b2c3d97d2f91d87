// update_kernels.h - raw fp32 kernels behind the fused SGD+AGC update (fused_update.h): one AGC unit's two squared
// norms (gradient and weight, accumulated in double) and its in-place update (clip scale, weight decay, momentum,
// Nesterov step). Three builds of the same code (update_kernels_impl.h): AVX-512, AVX2+FMA and baseline x86-64;
// update_kernel_table() picks the widest this CPU supports. No torch types here: plain pointers, dense rows.
#pragma once
#include <cstdint>

namespace nfscale::optim::update_kernels {

// One unit's update, scalars already rounded to fp32 as ATen rounds a Scalar alpha.
struct UnitUpdate {
  float scale = 1.0f;   // AGC's clip factor for this unit (1 = not clipped; g * 1 is exact)
  float weight_decay = 0.0f;
  float momentum = 0.0f;
  float neg_lr = 0.0f;  // -learning rate
  bool decay = false;   // g += weight_decay * p
  bool mom = false;     // buf = g + momentum * buf (buf may be null otherwise)
  bool nesterov = true;
};

struct KernelTable {
  const char* isa;  // "avx512", "avx2", "generic"
  // g_sq = sum g[i]^2, p_sq = sum p[i]^2 over i < n, in double; the order of the sums depends only on n.
  void (*sq_norms_f32)(const float* g, const float* p, int64_t n, double* g_sq, double* p_sq);
  // In place over i < n: gk = scale*g; gk += wd*p (decay); b = gk + m*buf, buf = b (mom);
  // step = gk + m*b (Nesterov) or b (plain momentum) or gk (no momentum); p += neg_lr*step;
  // g = step, or gk with plain momentum (what the ATen composition leaves in the gradient).
  void (*update_f32)(float* p, float* g, float* buf, int64_t n, const UnitUpdate& u);
};

const KernelTable& kernels_avx512();
const KernelTable& kernels_avx2();
const KernelTable& kernels_generic();
// The table for util/cpu_features.h kernel_isa(): the widest the CPU supports, or NFSCALE_FUSED_ISA=generic|avx2, the
// same choice as the models' fused kernels.
const KernelTable& update_kernel_table();

}  // namespace nfscale::optim::update_kernels
