// nfnet_family.h - the NFNet family as data: the paper members F0..F7, F0+..F7+ and the derived "mini" ladder in
// one spec table read by one builder (nfnet.h), their JSON form, and the family's registration (family.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/models/family.h"

namespace nfscale::models {

// One member's architecture and recipe defaults. The builder reads only this table (no per-model code).
struct ModelSpecInfo {
  std::string name;                  // e.g. "F0", "F7+", "mini-F3+"
  std::string family = "nfnet";
  std::string mirrors;               // ladder: the paper member it mirrors ("F3+"); paper members: itself
  bool is_ladder = false;
  std::vector<int64_t> depths;       // blocks per stage (4 stages, strides 1,2,2,2)
  std::vector<int64_t> widths;       // output channels per stage
  std::vector<int64_t> stem_widths;  // first three stem convs; the fourth has widths[0] / 2
  int64_t group_width = 128;         // channels per group of the 3x3 convs
  double bottleneck_ratio = 0.5;
  double se_ratio = 0.5;
  double alpha = 0.2;
  int64_t final_conv_mult = 2;       // head 1x1 conv to final_conv_mult * widths.back()
  int64_t train_res = 0, test_res = 0;
  double dropout = 0.0;              // head dropout default
  int64_t randaugment_layers = 0, randaugment_magnitude = 0;
  int64_t ref_num_classes = 1000;    // the setting the member's counts are quoted at
  int64_t ref_in_channels = 3;
  std::string note;                  // one line for `nfscale models`
};

// Bottleneck width and group count of a block with `out_channels`: width = int(out * ratio),
// groups = max(1, width / group_width); the width is rounded down to groups * group_width only when it is not a
// multiple of the group count (never for the paper's members). So the "+" stage 1 keeps 192 channels in one
// group, which reproduces the published F4+ size (527M, 367B MACs); docs/models.md has the alternative.
struct BottleneckShape {
  int64_t width = 0, groups = 1;
};
BottleneckShape bottleneck_shape(const ModelSpecInfo& spec, int64_t out_channels);

// The NFNet spec of a member name or JSON spec ({"family": "nfnet", ...}); UserError listing the valid names.
const ModelSpecInfo& model_spec(const std::string& name);
ModelSpecInfo nfnet_spec(const std::string& model);
nlohmann::json to_json(const ModelSpecInfo& spec);
ModelSpecInfo nfnet_spec_from_json(const nlohmann::json& j, const std::string& origin);

// Smallest accepted NFNet input resolution: every stride-2 layer must see a map of at least 2x2, i.e. > 32/2 px.
constexpr int64_t kMinResolution = 17;

const ModelFamily& nfnet_family();

}  // namespace nfscale::models
