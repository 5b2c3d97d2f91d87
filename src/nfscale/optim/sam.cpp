// sam.cpp - SAM / ASAM weight perturbation and exact restore.
#include "nfscale/optim/sam.h"

#include <torch/torch.h>

#include <cmath>

#include "nfscale/util/error.h"

namespace nfscale::optim {

Sam::Sam(std::vector<ParamSpec> params, SamOptions options) : params_(std::move(params)), options_(options) {
  validate_params(params_, "Sam");
  require(std::isfinite(options_.rho) && options_.rho > 0,
          "sam_rho is " + std::to_string(options_.rho) + "; it must be > 0 (SAM 0.05, ASAM ~2), or disable SAM");
  require(std::isfinite(options_.asam_eta) && options_.asam_eta >= 0,
          "SAM asam_eta is " + std::to_string(options_.asam_eta) + "; it must be >= 0 (ASAM default 0.01)");
  require(std::isfinite(options_.eps) && options_.eps > 0,
          "SAM eps is " + std::to_string(options_.eps) + "; it must be > 0 (default 1e-12)");
  torch::NoGradGuard no_grad;
  backup_.reserve(params_.size());
  for (const auto& s : params_) backup_.push_back(torch::empty_like(s.param));
}

double Sam::perturb() {
  require(!perturbed_, "Sam::perturb: the weights are already perturbed; call restore() before the next step");
  torch::NoGradGuard no_grad;
  const size_t n = params_.size();
  // ASAM scale per parameter: T = |w| + eta for weights, undefined (= identity) otherwise.
  std::vector<torch::Tensor> t(n);
  torch::Tensor sq_sum = torch::zeros({}, torch::kDouble);
  for (size_t i = 0; i < n; ++i) {
    const torch::Tensor w = params_[i].param.detach();
    const torch::Tensor g = params_[i].param.grad();
    if (!g.defined()) continue;
    if (options_.adaptive && params_[i].weight_decay) t[i] = w.abs().add_(options_.asam_eta);  // shape of w
    const torch::Tensor tg = t[i].defined() ? t[i] * g : g;
    sq_sum.add_(tg.norm().to(torch::kDouble).square());
  }
  const double norm = std::sqrt(sq_sum.item<double>());
  const double scale = options_.rho / (norm + options_.eps);
  for (size_t i = 0; i < n; ++i) {
    torch::Tensor w = params_[i].param.detach();
    backup_[i].copy_(w);
    const torch::Tensor g = params_[i].param.grad();
    if (!g.defined()) continue;
    if (t[i].defined()) {
      w.add_(t[i].square_().mul_(g), scale);  // e = scale * T^2 * g
    } else {
      w.add_(g, scale);                       // e = scale * g
    }
  }
  perturbed_ = true;
  return norm;
}

void Sam::restore() {
  require(perturbed_, "Sam::restore: the weights are not perturbed; call perturb() first");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].param.detach().copy_(backup_[i]);
  perturbed_ = false;
}

}  // namespace nfscale::optim
