// vit_names.cpp - the ViT timm name map (the table is in vit_names.h).
#include "nfscale/weights/vit_names.h"

#include <stdexcept>

#include "nfscale/models/vit/vit.h"
#include "nfscale/models/vit/vit_family.h"

namespace nfscale::weights {

VitTimmNameMap::VitTimmNameMap() : NfscaleNameMap("vit", models::vit_family().head_prefix()) {}

std::vector<MappedTensor> VitTimmNameMap::map(models::ClassifierImpl& model) const {
  if (!dynamic_cast<models::ViTImpl*>(&model))
    throw std::logic_error("VitTimmNameMap: model " + model.name() + " is not a ViT");
  return NfscaleNameMap::map(model);
}

}  // namespace nfscale::weights
