// sam.h - Sharpness-Aware Minimisation (Foret et al. 2021) and its adaptive variant ASAM (Kwon et al. 2021) as
// pieces a trainer calls around its own gradient computation: perturb() from the accumulated first gradient,
// second gradient at the perturbed weights, restore() bit-exactly, then the base optimiser step.
#pragma once
#include <torch/types.h>

#include <vector>

#include "nfscale/optim/param_spec.h"

namespace nfscale::optim {

struct SamOptions {
  double rho = 0.05;       // neighbourhood radius (SAM default 0.05; ASAM typically ~0.5-2)
  bool adaptive = false;   // ASAM: T_w = |w| + eta on weights, identity on gains/biases
  double asam_eta = 0.01;  // ASAM's eta (official ASAM code default); 0 gives the bare e = rho*w^2*g/||w*g||
  double eps = 1e-12;      // added to the norm in the denominator
};

// Order in a training step (see docs/optim.md):
//   1. zero grads; accumulate g over all micro-batches (the same ones used in 3)
//   2. sam.perturb()          e from the raw accumulated g (no AGC, no weight decay); w += e
//   3. zero grads; accumulate the second gradient at w + e over the same micro-batches
//   4. sam.restore()          w back to the stored original, bit-exactly
//   5. optimizer.step(lr)     AGC (if on) on the second gradient, then weight decay, then momentum
// With bf16 compute the specs must be the fp32 master weights; perturb/restore act on them.
class Sam {
 public:
  // Allocates one backup tensor per parameter (reused every step). Throws UserError on bad options/params.
  Sam(std::vector<ParamSpec> params, SamOptions options = {});

  // Reads each param.grad() (undefined grad = zero: that param is not perturbed), stores w, and sets
  //   SAM:  e = rho * g / (||g||_2 + eps),            ||g||_2 over all parameters together
  //   ASAM: e = rho * T^2 g / (||T g||_2 + eps),      T = |w| + eta for params with weight_decay=true
  //                                                   (weights), T = 1 for the others (gains, biases)
  //   w <- w + e.
  // Returns the denominator norm (||g|| or ||T g||) without eps. Throws if already perturbed.
  double perturb();

  // Sets every parameter back to the weights stored by perturb(), bit-exactly. Throws if not perturbed.
  void restore();

  bool perturbed() const { return perturbed_; }
  const SamOptions& options() const { return options_; }

 private:
  std::vector<ParamSpec> params_;
  SamOptions options_;
  std::vector<torch::Tensor> backup_;
  bool perturbed_ = false;
};

}  // namespace nfscale::optim
