// name_map.cpp - the table of name maps (one row per family) and the identity map.
#include "nfscale/weights/name_map.h"

#include <torch/torch.h>

#include "nfscale/models/classifier.h"
#include "nfscale/util/error.h"
#include "nfscale/models/nfnet/nfnet_family.h"
#include "nfscale/models/vit/vit_family.h"
#include "nfscale/weights/nfnet_names.h"
#include "nfscale/weights/vit_names.h"

namespace nfscale::weights {
namespace {

// One row per family: its identity map (with the family's classifier prefix) and its timm map.
struct FamilyRow {
  std::string family;
  std::shared_ptr<NameMap> nfscale, timm;
};
const std::vector<FamilyRow>& rows() {
  static const std::vector<FamilyRow> r = {
      {"nfnet", std::make_shared<NfscaleNameMap>("nfnet", models::nfnet_family().head_prefix()),
       std::make_shared<NfnetTimmNameMap>()},
      {"vit", std::make_shared<NfscaleNameMap>("vit", models::vit_family().head_prefix()),
       std::make_shared<VitTimmNameMap>()},
  };
  return r;
}

std::string families() {
  std::string out;
  for (const auto& r : rows()) out += (out.empty() ? "" : ", ") + r.family;
  return out;
}

}  // namespace

const NameMap& name_map(const std::string& family, const std::string& convention) {
  for (const auto& r : rows()) {
    if (r.family != family) continue;
    if (convention == "nfscale") return *r.nfscale;
    if (convention == "timm" && r.timm) return *r.timm;
    throw UserError("--names " + convention + ": no such naming for the " + family +
                    " family; valid choices: nfscale, timm");
  }
  throw UserError("model family '" + family + "' has no weight name map; families with one: " + families());
}

std::vector<std::string> name_conventions(const std::string& family) {
  for (const auto& r : rows())
    if (r.family == family) return r.timm ? std::vector<std::string>{"nfscale", "timm"} : std::vector<std::string>{"nfscale"};
  return {};
}

std::vector<MappedTensor> NfscaleNameMap::map(models::ClassifierImpl& model) const {
  std::vector<MappedTensor> out;
  for (const auto& p : model.named_parameters(true)) out.push_back({p.key(), p.key(), p.value().sizes().vec()});
  for (const auto& b : model.named_buffers(true)) out.push_back({b.key(), b.key(), b.value().sizes().vec()});
  return out;
}

}  // namespace nfscale::weights
