// sgd_agc.cpp - SGD + Nesterov momentum + weight decay + AGC, in place.
#include "nfscale/optim/sgd_agc.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cmath>

#include "nfscale/optim/fused_update.h"
#include "nfscale/optim/state_io.h"
#include "nfscale/util/error.h"

namespace nfscale::optim {

namespace {
const char* kArchiveKey = "sgd_agc";
}

SgdAgc::SgdAgc(std::vector<ParamSpec> params, SgdAgcOptions options)
    : params_(std::move(params)), options_(options) {
  validate_params(params_, "SgdAgc");
  require(std::isfinite(options_.momentum) && options_.momentum >= 0 && options_.momentum < 1,
          "optimizer.momentum is " + std::to_string(options_.momentum) + "; it must be in [0, 1) (reference 0.9)");
  require(std::isfinite(options_.weight_decay) && options_.weight_decay >= 0,
          "optimizer.weight_decay is " + std::to_string(options_.weight_decay) +
              "; it must be >= 0 (reference 2e-5)");
  if (options_.agc) validate(options_.agc_options);
  if (options_.momentum > 0) {
    torch::NoGradGuard no_grad;
    buffers_.reserve(params_.size());
    for (const auto& s : params_) buffers_.push_back(torch::zeros_like(s.param, at::MemoryFormat::Preserve));
  }
}

StepStats SgdAgc::step(double lr) {
  if (!std::isfinite(lr)) throw UserError("learning rate is " + std::to_string(lr) + "; it must be finite");
  torch::NoGradGuard no_grad;
  StepStats stats;
  stats.lr = lr;
  const double m = options_.momentum;
  const double wd = options_.weight_decay;
  // Accumulators as 0-d tensors so the whole step synchronises (item()) only once per statistic.
  torch::Tensor sq_sum, clipped;  // ATen path: 0-d double / int64 accumulators
  double fused_sq = 0.0;          // fused path
  int64_t fused_clipped = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamSpec& s = params_[i];
    torch::Tensor p = s.param.detach();
    torch::Tensor g = s.param.grad();
    if (!g.defined()) continue;
    torch::Tensor none;
    torch::Tensor& buf = m > 0 ? buffers_[i] : none;
    if (options_.fused && fused_update_supported(p, g, buf, m)) {
      FusedUpdateArgs a;
      a.agc = options_.agc && s.agc;
      a.agc_options = options_.agc_options;
      a.weight_decay = s.weight_decay ? wd : 0.0;
      a.momentum = m;
      a.nesterov = options_.nesterov;
      a.lr = lr;
      const FusedUpdateResult r = fused_update_(p, g, buf, a);
      fused_sq += r.grad_sq_norm;
      fused_clipped += r.units_clipped;
      if (a.agc) stats.units_total += agc_unit_count(p);
      continue;
    }
    // Raw-gradient squared norm for the global statistic (summed in double so fp32 sums of many params stay
    // accurate); AGC derives it from its unit norms, saving a pass over the gradient.
    torch::Tensor n2;
    if (options_.agc && s.agc) {
      torch::Tensor c = agc_clip_count_(g, p, options_.agc_options, &n2);
      clipped = clipped.defined() ? clipped.add_(c) : c;
      stats.units_total += agc_unit_count(p);
    } else {
      n2 = g.norm().to(torch::kDouble).square();
    }
    sq_sum = sq_sum.defined() ? sq_sum.add_(n2) : n2;
    if (wd > 0 && s.weight_decay) g.add_(p, wd);  // g = g + wd*p (after clipping)
    if (m > 0) {
      torch::add_out(buf, g, buf, m);             // buf = g + m*buf, one pass (elementwise, aliasing is safe)
      if (options_.nesterov) {
        g.add_(buf, m);                           // step = g + m*buf
        p.add_(g, -lr);
      } else {
        p.add_(buf, -lr);                         // step = buf
      }
    } else {
      p.add_(g, -lr);
    }
  }
  stats.grad_norm = std::sqrt((sq_sum.defined() ? sq_sum.item<double>() : 0.0) + fused_sq);
  stats.units_clipped = (clipped.defined() ? clipped.item<int64_t>() : 0) + fused_clipped;
  ++step_count_;
  return stats;
}

void SgdAgc::save(torch::serialize::OutputArchive& archive) const {
  write_tensor_list(archive, kArchiveKey, "SgdAgc", step_count_, param_names(params_), buffers_);
}

void SgdAgc::load(torch::serialize::InputArchive& archive) {
  std::vector<std::string> names = param_names(params_);
  if (buffers_.empty()) names.clear();  // momentum 0: the archive holds no buffers
  step_count_ = read_tensor_list(archive, kArchiveKey, "SgdAgc", names, buffers_);
}

}  // namespace nfscale::optim
