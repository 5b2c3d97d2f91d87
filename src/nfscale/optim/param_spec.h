// param_spec.h - a model parameter as the optimiser stack sees it: a tensor plus the per-parameter flags the recipes
// need (weight decay on/off, AGC on/off). Models describe their parameters with it (models::ParamInfo is this struct).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace nfscale::optim {

struct ParamSpec {
  std::string name;      // e.g. "stages.0.0.conv1.weight"; used in error messages and to validate saved state
  torch::Tensor param;   // the (fp32/fp64 master) weight, updated in place; its .grad() is read by the optimiser
  bool weight_decay = true;  // false for gains and biases (reference: no decay on gains and biases)
  bool agc = true;           // false for the final classifier weights (reference: the classifier is not clipped)
};

// Checks that every spec holds a defined floating-point tensor and that no tensor appears twice.
// `who` names the caller in the message (e.g. "SgdAgc"). Throws UserError.
void validate_params(const std::vector<ParamSpec>& params, const char* who);

// Names of the specs, in order.
std::vector<std::string> param_names(const std::vector<ParamSpec>& params);

}  // namespace nfscale::optim
