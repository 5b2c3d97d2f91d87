// optimizer.cpp - the gradient hand-over shared by every Optimizer (zero, clear, fill the missing ones).
#include "nfscale/optim/optimizer.h"

#include <torch/torch.h>

namespace nfscale::optim {

void Optimizer::zero_grad() {
  torch::NoGradGuard no_grad;
  for (const auto& s : params()) {
    torch::Tensor g = s.param.grad();
    if (g.defined()) {
      g.zero_();
    } else {
      torch::Tensor p = s.param;
      p.mutable_grad() = torch::zeros_like(p);
    }
  }
}

void Optimizer::clear_grads() {
  for (const auto& s : params()) {
    torch::Tensor p = s.param;
    p.mutable_grad() = torch::Tensor();
  }
}

void Optimizer::zero_missing_grads() {
  torch::NoGradGuard no_grad;
  for (const auto& s : params()) {
    torch::Tensor p = s.param;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  }
}

}  // namespace nfscale::optim
