// sgd_agc.h - the NFNet reference optimiser behind the Optimizer interface: SGD with (Nesterov) momentum, weight
// decay added after clipping, and Adaptive Gradient Clipping, over a plain list of ParamSpec. State saves bit-exactly.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/optim/archive_fwd.h"
#include "nfscale/optim/agc.h"
#include "nfscale/optim/optimizer.h"
#include "nfscale/optim/param_spec.h"

namespace nfscale::optim {

struct SgdAgcOptions {
  double momentum = 0.9;      // 0 = plain SGD (no momentum buffers)
  bool nesterov = true;       // step = g + m*buf (true) or buf (false)
  double weight_decay = 2e-5; // added to the (clipped) gradient of params with ParamSpec::weight_decay
  bool agc = true;            // false disables clipping for every parameter (fine-tuning option)
  AgcOptions agc_options;
  bool fused = true;          // one-pass update per parameter (fused_update.h) where supported; false = ATen ops
};

class SgdAgc : public Optimizer {
 public:
  // Throws UserError on an invalid parameter list or option (naming the field).
  SgdAgc(std::vector<ParamSpec> params, SgdAgcOptions options = {});

  static constexpr const char* kKind = "sgd_agc";
  std::string kind() const override { return kKind; }

  // One update from each param.grad() (the gradient summed/averaged over micro-batches and replicas):
  //   g <- AGC(g) (if enabled and spec.agc); g <- g + wd*p (if spec.weight_decay);
  //   buf <- m*buf + g; step = g + m*buf (Nesterov) or buf; p <- p - lr*step.
  // Works in place with no per-parameter allocations beyond AGC's per-unit norms: param.grad() is CONSUMED (on
  // return it holds the update direction `step`); zero it before accumulating the next gradient.
  // Parameters whose grad is undefined are skipped (no momentum update), like torch.optim.SGD.
  StepStats step(double lr) override;

  int64_t step_count() const override { return step_count_; }
  const std::vector<ParamSpec>& params() const override { return params_; }
  const SgdAgcOptions& options() const { return options_; }
  // Momentum buffers (same order as params; empty when momentum == 0).
  const std::vector<torch::Tensor>& momentum_buffers() const { return buffers_; }

  // Momentum buffers + step count. load() checks names/shapes/dtypes against this optimiser and throws UserError
  // on mismatch, leaving the state untouched. Round trip is bit-exact.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  std::vector<ParamSpec> params_;
  SgdAgcOptions options_;
  std::vector<torch::Tensor> buffers_;
  int64_t step_count_ = 0;
};

}  // namespace nfscale::optim
