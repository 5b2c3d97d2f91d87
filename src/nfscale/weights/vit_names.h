// vit_names.h - the ViT family's timm name map (timm's vision_transformer.py state_dict layout).
#pragma once
#include "nfscale/weights/name_map.h"

namespace nfscale::weights {

// nfscale's ViT modules carry timm's names and shapes, so the table is the identity:
//   cls_token [1,1,D] (token pool only), pos_embed [1, prefix + grid^2, D] (learned only),
//   patch_embed.proj.weight|bias, blocks.{i}.norm1|norm2.weight|bias, blocks.{i}.attn.qkv|proj.weight|bias,
//   blocks.{i}.mlp.fc1|fc2.weight|bias, norm.weight|bias, head.weight|bias.
// nfscale's 'gap' head is big_vision's (final LayerNorm, then the mean): timm's `global_pool='avg', fc_norm=False`.
// timm's default fc_norm (LayerNorm after the mean, `fc_norm.*` instead of `norm.*`) computes something else and is
// reported as missing/unexpected tensors. Importing timm names implies timm's exact-erf GELU (ConventionDefaults).
class VitTimmNameMap : public NfscaleNameMap {
 public:
  VitTimmNameMap();
  std::string convention() const override { return "timm"; }
  std::vector<MappedTensor> map(models::ClassifierImpl& model) const override;
  ConventionDefaults defaults() const override { return {"deepmind", "gelu_erf"}; }
};

}  // namespace nfscale::weights
