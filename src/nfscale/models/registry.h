// registry.h - the model registry: every buildable member (the NFNet family F0..F7, F0+..F7+, and the
// scaled-down "mini" ladder) as data, one builder, and cost counting from the built model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/models/classifier.h"

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

// All names, paper family first (F0..F7, F0+..F7+), then the ladder.
std::vector<std::string> model_names();
// The spec of `name`; UserError listing the valid names otherwise.
const ModelSpecInfo& model_spec(const std::string& name);
// The ladder member recommended for small experiments (Fashion-MNIST-sized budgets).
std::string default_small_model();
// Describes the rule that derives the ladder from the paper family (for docs and `nfscale models`).
std::string ladder_rule();

// Smallest accepted input resolution: every stride-2 layer must see a map of at least 2x2, i.e. > 32/2 px.
constexpr int64_t kMinResolution = 17;
// UserError (naming the model and the valid range) unless kMinResolution <= res; also rejects res <= 0.
void check_resolution(const std::string& name, int64_t res);

// Builds a member; UserError on unknown name, bad activation, classes/channels < 1, dropout outside [0,1).
Classifier build_model(const ModelConfig& config);
// Builds a model from an explicit spec (e.g. read from `nfscale models --json` output) instead of a registry name;
// config.name is ignored. Same checks as above, plus UserError for an unknown family.
Classifier build_model(const ModelSpecInfo& spec, const ModelConfig& config);

// Counts from the built model: parameters (numel of every parameter) and the MACs of one batch-1 forward at
// res x res with in_channels (convs: out_numel * kh*kw*cin/groups; linears incl. SE: in*out). Activations,
// pooling, padding, biases and element-wise ops are not counted (the reference's convention).
ModelCost count_cost(ClassifierImpl& model, int64_t resolution, int64_t in_channels);
// Same, by name: builds an uninitialised model (cheap) and counts it.
ModelCost count_cost(const std::string& name, int64_t resolution, int64_t in_channels, int64_t num_classes);

}  // namespace nfscale::models
