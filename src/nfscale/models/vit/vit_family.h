// vit_family.h - the ViT family as data: the named members Ti, S, M, B, L, H, g, G at patch 16 and 14 and
// SoViT-400m/14, the derived "mini-ViT" ladder, all read by one builder (vit.h), and the family's registration.
#pragma once
#include <string>
#include <vector>

#include "nfscale/models/family.h"
#include "nfscale/models/vit/vit.h"

namespace nfscale::models {

// Every named ViT spec (members, then ladder). Names use '-' for the patch ("ViT-S-16" is ViT-S/16) so that they
// can be file names.
const std::vector<ViTSpec>& vit_specs();
// The spec of a member name or a JSON spec ({"family": "vit", ...}); UserError listing the valid names otherwise.
ViTSpec vit_spec(const std::string& model);
// The rule deriving the mini-ViT ladder (docs/models.md).
std::string vit_ladder_rule();

const ModelFamily& vit_family();

}  // namespace nfscale::models
