// adamw.cpp - AdamW with global-norm clipping and the torch / big_vision decay conventions (see adamw.h).
#include "nfscale/optim/adamw.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cmath>

#include "nfscale/optim/clip.h"
#include "nfscale/optim/state_io.h"
#include "nfscale/util/error.h"

namespace nfscale::optim {

DecayConvention parse_decay_convention(const std::string& name, const std::string& field) {
  if (name == "torch") return DecayConvention::kTorch;
  if (name == "big_vision") return DecayConvention::kBigVision;
  throw UserError(field + ": unknown weight-decay convention '" + name +
                  "'; use 'torch' (p -= lr*wd*p) or 'big_vision' (p -= lr/peak_lr*wd*p)");
}

std::string decay_convention_name(DecayConvention c) { return c == DecayConvention::kTorch ? "torch" : "big_vision"; }

AdamW::AdamW(std::vector<ParamSpec> params, AdamWOptions options) : params_(std::move(params)), options_(options) {
  validate_params(params_, "AdamW");
  auto in01 = [](double b) { return std::isfinite(b) && b >= 0 && b < 1; };
  require(in01(options_.beta1), "optimizer.beta1 is " + std::to_string(options_.beta1) + "; it must be in [0, 1) (0.9)");
  require(in01(options_.beta2),
          "optimizer.beta2 is " + std::to_string(options_.beta2) + "; it must be in [0, 1) (0.999)");
  require(std::isfinite(options_.eps) && options_.eps > 0,
          "optimizer.eps is " + std::to_string(options_.eps) + "; it must be > 0 (1e-8)");
  require(std::isfinite(options_.weight_decay) && options_.weight_decay >= 0,
          "optimizer.weight_decay is " + std::to_string(options_.weight_decay) + "; it must be >= 0");
  require(options_.decay != DecayConvention::kBigVision || options_.weight_decay == 0 ||
              (std::isfinite(options_.peak_lr) && options_.peak_lr > 0),
          "optimizer.peak_lr is " + std::to_string(options_.peak_lr) +
              "; the big_vision decay convention needs the schedule's peak LR (> 0)");
  require(std::isfinite(options_.clip_global_norm),
          "optimizer.clip_global_norm must be finite (1.0 in the ViT recipe, 0 disables)");
  torch::NoGradGuard no_grad;
  for (const auto& s : params_) {
    m_.push_back(torch::zeros_like(s.param, at::MemoryFormat::Preserve));
    v_.push_back(torch::zeros_like(s.param, at::MemoryFormat::Preserve));
  }
}

StepStats AdamW::step(double lr) {
  if (!std::isfinite(lr)) throw UserError("learning rate is " + std::to_string(lr) + "; it must be finite");
  torch::NoGradGuard no_grad;
  StepStats stats;
  stats.lr = lr;
  stats.grad_norm = clip_grad_global_norm_(params_, options_.clip_global_norm);
  if (options_.clip_global_norm > 0) {
    stats.units_total = 1;
    stats.units_clipped = stats.grad_norm > options_.clip_global_norm ? 1 : 0;
  }
  const auto t = static_cast<double>(step_count_ + 1);
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bc1 = 1.0 - std::pow(b1, t);
  const double sqrt_bc2 = std::sqrt(1.0 - std::pow(b2, t));
  const double decay = options_.weight_decay *
                       (options_.decay == DecayConvention::kTorch ? lr : lr / std::max(options_.peak_lr, 1e-300));
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor p = params_[i].param.detach();
    const torch::Tensor g = params_[i].param.grad();
    if (!g.defined()) continue;
    if (params_[i].weight_decay && decay != 0.0) p.mul_(1.0 - decay);  // decoupled decay (torch AdamW order)
    m_[i].mul_(b1).add_(g, 1.0 - b1);
    v_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    // p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
    const torch::Tensor denom = (v_[i].sqrt() / sqrt_bc2).add_(options_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
  ++step_count_;
  return stats;
}

void AdamW::save(torch::serialize::OutputArchive& archive) const {
  const std::vector<std::string> names = param_names(params_);
  write_tensor_list(archive, "adamw_m", "AdamW", step_count_, names, m_);
  write_tensor_list(archive, "adamw_v", "AdamW", step_count_, names, v_);
}

void AdamW::load(torch::serialize::InputArchive& archive) {
  const std::vector<std::string> names = param_names(params_);
  // Validate and stage both lists before touching the live state (read_tensor_list copies on success only).
  std::vector<torch::Tensor> m, v;
  for (size_t i = 0; i < params_.size(); ++i) {
    m.push_back(torch::empty_like(m_[i]));
    v.push_back(torch::empty_like(v_[i]));
  }
  const int64_t step_m = read_tensor_list(archive, "adamw_m", "AdamW", names, m);
  const int64_t step_v = read_tensor_list(archive, "adamw_v", "AdamW", names, v);
  require(step_m == step_v, "checkpoint entries 'adamw_m' and 'adamw_v' disagree on the step (" +
                                std::to_string(step_m) + " vs " + std::to_string(step_v) + "); the file is corrupt");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(m[i]);
    v_[i].copy_(v[i]);
  }
  step_count_ = step_m;
}

}  // namespace nfscale::optim
