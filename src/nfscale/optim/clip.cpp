// clip.cpp - global-norm gradient clipping (see clip.h).
#include "nfscale/optim/clip.h"

#include <torch/torch.h>

#include <cmath>

#include "nfscale/util/error.h"

namespace nfscale::optim {

double global_grad_norm(const std::vector<ParamSpec>& params) {
  torch::NoGradGuard no_grad;
  torch::Tensor sq;  // 0-d double accumulator: one synchronisation for the whole list
  for (const auto& s : params) {
    const torch::Tensor g = s.param.grad();
    if (!g.defined()) continue;
    torch::Tensor n2 = g.norm().to(torch::kDouble).square();  // []
    sq = sq.defined() ? sq.add_(n2) : n2;
  }
  return sq.defined() ? std::sqrt(sq.item<double>()) : 0.0;
}

double clip_grad_global_norm_(const std::vector<ParamSpec>& params, double max_norm) {
  require(std::isfinite(max_norm), "optimizer.clip_global_norm is " + std::to_string(max_norm) +
                                       "; it must be finite (1.0 in the ViT recipe, 0 disables)");
  const double norm = global_grad_norm(params);
  if (max_norm <= 0 || !(norm > max_norm)) return norm;
  torch::NoGradGuard no_grad;
  const double scale = max_norm / norm;
  for (const auto& s : params) {
    torch::Tensor g = s.param.grad();
    if (g.defined()) g.mul_(scale);
  }
  return norm;
}

}  // namespace nfscale::optim
