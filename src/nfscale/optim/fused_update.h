// fused_update.h - SgdAgc's per-parameter update (unit-wise AGC -> weight decay -> momentum -> (Nesterov) step) in
// one pass over raw memory, instead of ~15 small ATen ops per parameter. fp32 runs the vector kernels of
// update_kernels.h (AVX-512 / AVX2 / baseline, picked at run time): one step over F0's 71.5M parameters takes 32 ms
// against the ATen composition's 80 ms, over mini-F3's 437 tensors 1.4 ms against 10 ms (bench/bench_optim.cpp).
// The same formulas as the ATen path, with the update in the parameter's dtype and the scalars rounded to it as ATen
// does; unit norms are accumulated in double (ATen accumulates fp32 norms in fp32) and the fp32 kernels contract
// a + b*c into FMAs, so fp32 results can differ from the ATen path at the rounding level (fp64: ~1e-16).
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "nfscale/optim/agc.h"

namespace nfscale::optim {

struct FusedUpdateArgs {
  bool agc = false;         // clip this parameter unit-wise
  AgcOptions agc_options;
  double weight_decay = 0;  // 0 = none for this parameter
  double momentum = 0;      // 0 = no buffer (buf may be undefined)
  bool nesterov = true;
  double lr = 0;
};

struct FusedUpdateResult {
  double grad_sq_norm = 0;  // sum of squares of the raw gradient (before clipping)
  int64_t units_clipped = 0;
};

// True when the fused path can run: p, g (and buf when momentum > 0) contiguous, same dtype (fp32 or fp64), same
// shape. Otherwise callers use the ATen composition.
bool fused_update_supported(const torch::Tensor& p, const torch::Tensor& g, const torch::Tensor& buf,
                            double momentum);

// In place: g <- AGC(g); g <- g + wd*p; buf <- g + m*buf; step = g + m*buf (Nesterov) or buf; p <- p - lr*step;
// g <- step with Nesterov or no momentum, g <- the clipped, decayed gradient with plain momentum (as the ATen path).
// Units: rows of dim 0, or the whole tensor when at most one dim exceeds 1 (agc_whole_tensor).
FusedUpdateResult fused_update_(torch::Tensor& p, torch::Tensor& g, torch::Tensor& buf, const FusedUpdateArgs& args);

}  // namespace nfscale::optim
