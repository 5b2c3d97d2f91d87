// param_spec.cpp - validation of the parameter lists handed to the optimiser stack.
#include "nfscale/optim/param_spec.h"

#include <unordered_set>

#include "nfscale/util/error.h"

namespace nfscale::optim {

void validate_params(const std::vector<ParamSpec>& params, const char* who) {
  std::unordered_set<const void*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& s = params[i];
    const std::string label = std::string(who) + ": parameter #" + std::to_string(i) + " '" + s.name + "'";
    require(s.param.defined(), label + " is an undefined tensor; pass the model's parameter tensors");
    require(s.param.is_floating_point(),
            label + " has dtype " + std::string(c10::toString(s.param.scalar_type())) +
                "; the optimiser needs floating-point (fp32/fp64 master) weights");
    require(seen.insert(s.param.unsafeGetTensorImpl()).second,
            label + " is the same tensor as an earlier entry; list each parameter once");
  }
}

std::vector<std::string> param_names(const std::vector<ParamSpec>& params) {
  std::vector<std::string> names;
  names.reserve(params.size());
  for (const auto& s : params) names.push_back(s.name);
  return names;
}

}  // namespace nfscale::optim
