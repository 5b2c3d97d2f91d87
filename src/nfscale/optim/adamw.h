// adamw.h - the ViT recipe's optimiser behind the Optimizer interface: Adam with decoupled weight decay on the params
// flagged weight_decay (weight matrices), after global-norm clipping; two decay conventions (torch and big_vision).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/optim/archive_fwd.h"
#include "nfscale/optim/optimizer.h"
#include "nfscale/optim/param_spec.h"

namespace nfscale::optim {

// How the decoupled weight decay is scaled (docs/optim.md):
//  kTorch:     p <- p - lr_t * wd * p              (torch.optim.AdamW's weight_decay = lambda)
//  kBigVision: p <- p - (lr_t / peak_lr) * wd * p  (big_vision's config.wd: multiplied by the schedule, not by the
//              LR), so big_vision wd = w is torch lambda = w / peak_lr.
enum class DecayConvention { kTorch, kBigVision };
// "torch" | "big_vision"; UserError naming `field` otherwise.
DecayConvention parse_decay_convention(const std::string& name, const std::string& field);
std::string decay_convention_name(DecayConvention c);

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;                 // added to sqrt(v_hat)
  double weight_decay = 1e-4;        // in `decay` convention (big_vision's ViT-S/16 ImageNet value)
  DecayConvention decay = DecayConvention::kBigVision;
  double peak_lr = 0.0;              // the schedule's peak; needed (> 0) by kBigVision when weight_decay > 0
  double clip_global_norm = 1.0;     // <= 0 disables the global-norm clipping
};

class AdamW : public Optimizer {
 public:
  // Throws UserError on an invalid parameter list or option (naming the field).
  AdamW(std::vector<ParamSpec> params, AdamWOptions options = {});

  static constexpr const char* kKind = "adamw";
  std::string kind() const override { return kKind; }

  // t = step_count() + 1; g <- clip_by_global_norm(g) over every param with a grad; then per param:
  //   p <- p - d_t * p          (only spec.weight_decay params; d_t = lr*wd (torch) or lr/peak_lr*wd (big_vision))
  //   m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
  //   p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
  // Params with an undefined grad are skipped (moments unchanged). param.grad() is left clipped.
  StepStats step(double lr) override;

  int64_t step_count() const override { return step_count_; }
  const std::vector<ParamSpec>& params() const override { return params_; }
  const AdamWOptions& options() const { return options_; }
  const std::vector<torch::Tensor>& first_moments() const { return m_; }
  const std::vector<torch::Tensor>& second_moments() const { return v_; }

  // Both moments + step count; bit-exact round trip; load validates before changing anything.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  std::vector<ParamSpec> params_;
  AdamWOptions options_;
  std::vector<torch::Tensor> m_, v_;
  int64_t step_count_ = 0;
};

}  // namespace nfscale::optim
