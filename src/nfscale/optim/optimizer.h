// optimizer.h - the optimiser seam: one interface (step, gradient clear/hand-over, save/load with its kind) that the
// trainer drives, with SGD+AGC (sgd_agc.h, the NFNet recipe) and AdamW (adamw.h, the ViT recipe) behind it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/optim/archive_fwd.h"
#include "nfscale/optim/param_spec.h"

namespace nfscale::optim {

// What one step did, for the metrics log.
struct StepStats {
  double lr = 0.0;
  double grad_norm = 0.0;      // global L2 norm of the raw gradients (before clipping and decay)
  int64_t units_clipped = 0;   // clipped units this step (AGC: rows/tensors; global-norm clipping: 1 if clipped)
  int64_t units_total = 0;     // units considered (AGC: params with agc=true; global-norm clipping: 1)
  double clip_fraction() const { return units_total ? double(units_clipped) / double(units_total) : 0.0; }
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // The kind recorded in checkpoints ("sgd_agc", "adamw"); a checkpoint of another kind is refused on load.
  virtual std::string kind() const = 0;
  // One update from each param.grad() (the gradient summed/averaged over micro-batches and replicas). Parameters
  // whose grad is undefined are skipped. param.grad() may be consumed (overwritten with the update direction):
  // clear or zero the grads before accumulating the next gradient.
  virtual StepStats step(double lr) = 0;
  virtual const std::vector<ParamSpec>& params() const = 0;
  virtual int64_t step_count() const = 0;
  // Per-parameter state + step count to/from a nested archive; load() validates names, shapes and dtypes and throws
  // UserError on mismatch, leaving the state untouched. Round trip is bit-exact.
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load(torch::serialize::InputArchive& archive) = 0;

  // Gradient hand-over (shared by every optimiser):
  // zero_grad sets every param's grad to zero (allocating it if undefined) without reallocating existing grads.
  virtual void zero_grad();
  // clear_grads drops every grad (undefined), so the next backward hands its fresh gradient buffer to the param
  // instead of adding it into zeros (saves a fill and an add pass over every parameter). Follow the backward passes
  // with zero_missing_grads(), which gives a zero grad to every param no backward reached, so the step then updates
  // exactly what it would after zero_grad() + backward (bit for bit, up to the sign of zero gradient entries).
  virtual void clear_grads();
  virtual void zero_missing_grads();
};

}  // namespace nfscale::optim
