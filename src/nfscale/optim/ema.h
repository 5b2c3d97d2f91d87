// ema.h - exponential moving average of the weights (reference: decay 0.99999 with the TF1-style warm-up
// min(decay, (1+t)/(10+t))), with swap-in/restore of the averaged weights for evaluation and bit-exact save/load.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/optim/archive_fwd.h"
#include "nfscale/optim/param_spec.h"

namespace nfscale::optim {

struct EmaOptions {
  double decay = 0.99999;
  bool warmup = true;  // use min(decay, (1+t)/(10+t)); false = constant decay
};

class Ema {
 public:
  // Shadows start as copies of the current weights (same dtype and device). Throws UserError on bad input.
  Ema(const std::vector<ParamSpec>& params, EmaOptions options = {});

  // Effective decay for the update made after optimiser step `step` (0-based): min(decay, (1+t)/(10+t)).
  double decay_at(int64_t step) const;

  // shadow <- d*shadow + (1-d)*param, d = decay_at(step). `params` must match the constructor's list (names and
  // shapes; checked). In place, no allocations.
  void update(const std::vector<ParamSpec>& params, int64_t step);

  // Copies the shadows into `params` for evaluation, keeping the live weights in a backup (allocated on the first
  // swap and reused). Throws if already swapped in.
  void swap_in(const std::vector<ParamSpec>& params);
  // Puts the live weights back, bit-exactly. Throws if not swapped in.
  void restore(const std::vector<ParamSpec>& params);
  bool swapped_in() const { return swapped_; }

  const std::vector<torch::Tensor>& shadows() const { return shadows_; }
  const std::vector<std::string>& names() const { return names_; }
  const EmaOptions& options() const { return options_; }

  // Shadows (and the step of the last update) to/from a nested archive "ema"; bit-exact; load validates names,
  // shapes and dtypes and throws UserError on mismatch.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);
  int64_t last_step() const { return last_step_; }

 private:
  void check_matches(const std::vector<ParamSpec>& params, const char* what) const;

  EmaOptions options_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> shadows_;
  std::vector<torch::Tensor> backup_;
  bool swapped_ = false;
  int64_t last_step_ = -1;  // -1: never updated
};

}  // namespace nfscale::optim
