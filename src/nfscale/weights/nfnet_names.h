// nfnet_names.h - the NFNet family's timm name map (timm's dm_nfnet_* state_dict layout).
#pragma once
#include "nfscale/weights/name_map.h"

namespace nfscale::weights {

// nfscale module name -> timm name (the whole table; shapes: WS gains [O] -> [O,1,1,1], SE linears [O,I] ->
// [O,I,1,1] as timm's 1x1 convs):
//   stem_conv{i}.*          -> stem.conv{i+1}.*
//   block{k}.conv0|conv1|conv1b|conv2.*  -> stages.{s}.{b}.conv1|conv2|conv2b|conv3.*   (block k = stage s, index b)
//   block{k}.conv_shortcut.* -> stages.{s}.{b}.downsample.conv.*
//   block{k}.se.fc0|fc1.*    -> stages.{s}.{b}.attn_last.fc1|fc2.*
//   block{k}.skip_gain       -> stages.{s}.{b}.skipinit_gain
//   final_conv.*             -> final_conv.*
//   fc.*                     -> head.fc.*
// Importing timm names implies timm's WS form and exact-erf GELU (ConventionDefaults).
class NfnetTimmNameMap : public NameMap {
 public:
  std::string family() const override { return "nfnet"; }
  std::string convention() const override { return "timm"; }
  std::vector<MappedTensor> map(models::ClassifierImpl& model) const override;
  std::string classifier_prefix() const override { return "fc."; }
  ConventionDefaults defaults() const override { return {"timm", "gelu_erf"}; }
};

}  // namespace nfscale::weights
