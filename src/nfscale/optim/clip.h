// clip.h - global-norm gradient clipping (the ViT recipe's clip at 1.0): all gradients together are rescaled so
// that their joint L2 norm is at most max_norm, as optax.clip_by_global_norm does.
#pragma once
#include <vector>

#include "nfscale/optim/param_spec.h"

namespace nfscale::optim {

// sqrt(sum over params with a defined grad of ||grad||^2), accumulated in double.
double global_grad_norm(const std::vector<ParamSpec>& params);

// norm = global_grad_norm(params); if norm > max_norm, every grad g <- g * (max_norm / norm) (in place), else
// unchanged (optax.clip_by_global_norm; torch's clip_grad_norm_ differs only by a 1e-6 in the denominator).
// max_norm <= 0 disables clipping. Returns the norm before clipping. UserError on a non-finite max_norm.
double clip_grad_global_norm_(const std::vector<ParamSpec>& params, double max_norm);

}  // namespace nfscale::optim
