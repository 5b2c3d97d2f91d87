// ema.cpp - EMA of weights with warm-up, evaluation swap, and serialisation.
#include "nfscale/optim/ema.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "nfscale/optim/state_io.h"
#include "nfscale/util/error.h"

namespace nfscale::optim {

Ema::Ema(const std::vector<ParamSpec>& params, EmaOptions options) : options_(options) {
  validate_params(params, "Ema");
  require(std::isfinite(options_.decay) && options_.decay > 0 && options_.decay < 1,
          "ema_decay is " + std::to_string(options_.decay) + "; it must be in (0, 1) (reference 0.99999)");
  torch::NoGradGuard no_grad;
  names_ = param_names(params);
  shadows_.reserve(params.size());
  for (const auto& s : params) shadows_.push_back(s.param.detach().clone());
}

double Ema::decay_at(int64_t step) const {
  if (!options_.warmup) return options_.decay;
  const double t = static_cast<double>(std::max<int64_t>(step, 0));
  return std::min(options_.decay, (1.0 + t) / (10.0 + t));
}

void Ema::check_matches(const std::vector<ParamSpec>& params, const char* what) const {
  require(params.size() == shadows_.size(),
          std::string("Ema::") + what + ": got " + std::to_string(params.size()) + " parameters but the EMA has " +
              std::to_string(shadows_.size()) + "; pass the same parameter list as at construction");
  for (size_t i = 0; i < params.size(); ++i) {
    // Checked without building the message on the (per-step) success path.
    if (params[i].name != names_[i] || !params[i].param.defined() ||
        params[i].param.sizes() != shadows_[i].sizes() ||
        params[i].param.scalar_type() != shadows_[i].scalar_type()) {
      throw UserError(std::string("Ema::") + what + ": parameter #" + std::to_string(i) + " '" + params[i].name +
                      "' does not match the EMA's '" + names_[i] + "' (name, shape or dtype); pass the same list");
    }
  }
}

void Ema::update(const std::vector<ParamSpec>& params, int64_t step) {
  check_matches(params, "update");
  require(!swapped_, "Ema::update: the EMA weights are swapped into the model; call restore() first");
  torch::NoGradGuard no_grad;
  const double d = decay_at(step);
  for (size_t i = 0; i < params.size(); ++i) shadows_[i].mul_(d).add_(params[i].param.detach(), 1.0 - d);
  last_step_ = step;
}

void Ema::swap_in(const std::vector<ParamSpec>& params) {
  check_matches(params, "swap_in");
  require(!swapped_, "Ema::swap_in: the EMA weights are already swapped in; call restore() first");
  torch::NoGradGuard no_grad;
  if (backup_.empty()) {
    backup_.reserve(params.size());
    for (const auto& s : params) backup_.push_back(torch::empty_like(s.param));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    backup_[i].copy_(params[i].param.detach());
    params[i].param.detach().copy_(shadows_[i]);
  }
  swapped_ = true;
}

void Ema::restore(const std::vector<ParamSpec>& params) {
  check_matches(params, "restore");
  require(swapped_, "Ema::restore: the EMA weights are not swapped in; nothing to restore");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) params[i].param.detach().copy_(backup_[i]);
  swapped_ = false;
}

void Ema::save(torch::serialize::OutputArchive& archive) const {
  write_tensor_list(archive, "ema", "Ema", last_step_, names_, shadows_);
}

void Ema::load(torch::serialize::InputArchive& archive) {
  require(!swapped_, "Ema::load: the EMA weights are swapped into the model; call restore() first");
  last_step_ = read_tensor_list(archive, "ema", "Ema", names_, shadows_);
}

}  // namespace nfscale::optim
