// agc.h - Adaptive Gradient Clipping (Brock et al. 2021, official nfnets/optim.py): unit-wise rescaling of a
// gradient whose norm exceeds `clip` times the norm of the matching weight unit. See docs/optim.md.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace nfscale::optim {

struct AgcOptions {
  double clip = 0.01;        // lambda: max ||G_unit|| / max(||W_unit||, eps)
  double eps = 1e-3;         // floor on the weight-unit norm (zero-initialised weights can still move)
  double grad_floor = 1e-6;  // floor on the gradient-unit norm in the rescale denominator ("just in case")
};

// Checks the options; throws UserError naming the field.
void validate(const AgcOptions& options);

struct AgcStats {
  int64_t units_clipped = 0;
  int64_t units_total = 0;
  double fraction() const { return units_total ? double(units_clipped) / double(units_total) : 0.0; }
  AgcStats& operator+=(const AgcStats& o) {
    units_clipped += o.units_clipped;
    units_total += o.units_total;
    return *this;
  }
};

// True if `x` is treated as a single unit: at most one dimension larger than 1 (scalars, vectors, and e.g.
// [1, I] or [O, 1, 1, 1] weights), exactly the official rule `len(squeeze(x).shape) <= 1`.
bool agc_whole_tensor(const torch::Tensor& x);

// Number of AGC units of `x`: 1 if agc_whole_tensor(x), else x.size(0) (output channels / output units).
int64_t agc_unit_count(const torch::Tensor& x);

// Unit-wise L2 norm. Whole-tensor case: a 0-d tensor. Otherwise, for x of shape [O, ...]: shape [O, 1, ..., 1]
// (norm over all dims but the first; conv [O,I,kh,kw] -> [O,1,1,1], linear [O,I] -> [O,1]).
torch::Tensor unitwise_norm(const torch::Tensor& x);

// Clips `grad` (same shape as `param`) in place:
//   max_norm = clip * max(||W_unit||, eps);  if ||G_unit|| > max_norm: G_unit *= max_norm / max(||G_unit||, floor).
// Units that are not clipped are left bit-identical. Returns how many units were clipped (a 0-d int64 tensor, so a
// caller clipping many tensors synchronises once) - see agc_clip_ for the plain-number form.
// If `grad_sq_norm` is non-null it receives ||grad||^2 (before clipping) as a 0-d tensor, derived from the unit
// norms already computed, so a caller wanting the global gradient norm need not read the gradient again.
torch::Tensor agc_clip_count_(const torch::Tensor& grad, const torch::Tensor& param, const AgcOptions& options,
                              torch::Tensor* grad_sq_norm = nullptr);

// As agc_clip_count_, returning plain statistics for this one tensor.
AgcStats agc_clip_(const torch::Tensor& grad, const torch::Tensor& param, const AgcOptions& options = {});

}  // namespace nfscale::optim
