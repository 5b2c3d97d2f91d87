// agc.cpp - Adaptive Gradient Clipping, unit-wise, in place.
#include "nfscale/optim/agc.h"

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "nfscale/util/error.h"

namespace nfscale::optim {

void validate(const AgcOptions& o) {
  require(std::isfinite(o.clip) && o.clip > 0, "optimizer.clip (AGC) is " + std::to_string(o.clip) +
                                                   "; it must be > 0 (reference 0.01), or disable AGC instead");
  require(std::isfinite(o.eps) && o.eps > 0,
          "optimizer AGC eps is " + std::to_string(o.eps) + "; it must be > 0 (reference 1e-3)");
  require(std::isfinite(o.grad_floor) && o.grad_floor > 0,
          "optimizer AGC grad_floor is " + std::to_string(o.grad_floor) + "; it must be > 0 (reference 1e-6)");
}

bool agc_whole_tensor(const torch::Tensor& x) {
  int64_t big = 0;
  for (int64_t s : x.sizes()) big += s > 1;
  return big <= 1;
}

int64_t agc_unit_count(const torch::Tensor& x) { return agc_whole_tensor(x) ? 1 : x.size(0); }

torch::Tensor unitwise_norm(const torch::Tensor& x) {
  if (agc_whole_tensor(x)) return x.norm();  // 0-d
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < x.dim(); ++d) dims.push_back(d);
  return x.norm(2, dims, /*keepdim=*/true);  // [O, 1, ..., 1]
}

torch::Tensor agc_clip_count_(const torch::Tensor& grad, const torch::Tensor& param, const AgcOptions& options,
                              torch::Tensor* grad_sq_norm) {
  TORCH_CHECK(grad.sizes() == param.sizes(), "agc: grad and param shapes differ");
  torch::NoGradGuard no_grad;
  const torch::Tensor w_norm = unitwise_norm(param.detach());         // [O,1,..] or 0-d
  const torch::Tensor g_norm = unitwise_norm(grad.detach());          // same shape
  if (grad_sq_norm) *grad_sq_norm = g_norm.to(torch::kDouble).square().sum();  // 0-d
  const torch::Tensor max_norm = w_norm.clamp_min(options.eps).mul_(options.clip);
  const torch::Tensor trigger = g_norm > max_norm;                    // bool, same shape
  // Scale is exactly 1 where not triggered, so those units stay bit-identical.
  const torch::Tensor scale =
      torch::where(trigger, max_norm / g_norm.clamp_min(options.grad_floor), torch::ones_like(g_norm));
  grad.mul_(scale);  // broadcasts [O,1,..] over [O,...]
  return trigger.sum();
}

AgcStats agc_clip_(const torch::Tensor& grad, const torch::Tensor& param, const AgcOptions& options) {
  AgcStats s;
  s.units_clipped = agc_clip_count_(grad, param, options).item<int64_t>();
  s.units_total = agc_unit_count(param);
  return s;
}

}  // namespace nfscale::optim
