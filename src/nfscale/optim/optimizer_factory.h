// optimizer_factory.h - builds an Optimizer by kind ("sgd_agc" | "adamw") from one configuration that holds every
// kind's options; the model family supplies the default kind and hyper-parameters (models/family.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nfscale/optim/adamw.h"
#include "nfscale/optim/optimizer.h"
#include "nfscale/optim/sgd_agc.h"

namespace nfscale::optim {

struct OptimizerConfig {
  std::string kind = SgdAgc::kKind;  // "sgd_agc" | "adamw"
  SgdAgcOptions sgd;                 // used when kind == "sgd_agc"
  AdamWOptions adamw;                // used when kind == "adamw"
};

// The kinds make_optimizer knows, in order.
std::vector<std::string> optimizer_kinds();

// UserError naming the field `optimizer` and the valid kinds on an unknown kind; otherwise the constructor's checks.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, std::vector<ParamSpec> params);

}  // namespace nfscale::optim
