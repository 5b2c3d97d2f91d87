// optimizer_factory.cpp - Optimizer construction by kind (see optimizer_factory.h).
#include "nfscale/optim/optimizer_factory.h"

#include "nfscale/util/error.h"

namespace nfscale::optim {

std::vector<std::string> optimizer_kinds() { return {SgdAgc::kKind, AdamW::kKind}; }

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, std::vector<ParamSpec> params) {
  if (config.kind == SgdAgc::kKind) return std::make_unique<SgdAgc>(std::move(params), config.sgd);
  if (config.kind == AdamW::kKind) return std::make_unique<AdamW>(std::move(params), config.adamw);
  std::string kinds;
  for (const auto& k : optimizer_kinds()) kinds += (kinds.empty() ? "" : ", ") + k;
  throw UserError("optimizer: unknown kind '" + config.kind + "'; valid kinds: " + kinds +
                  " (or 'auto' for the model family's default)");
}

}  // namespace nfscale::optim
