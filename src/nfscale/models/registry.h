// registry.h - the model registry over every family (family.h: NFNet F0..F7+, ViT Ti..G, SoViT, and their "mini"
// ladders): names, specs, one build entry that dispatches to the model's family, and cost counting from the built
// model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/models/classifier.h"
#include "nfscale/models/family.h"
#include "nfscale/models/nfnet/nfnet_family.h"

namespace nfscale::models {


// All names, family by family (NFNet: F0..F7, F0+..F7+, mini ladder; ViT: members, mini ladder).
std::vector<std::string> model_names();
// The shared description of a member name or JSON spec (any family); UserError listing the valid names otherwise.
ModelInfo model_info(const std::string& model);
// The ladder member recommended for small experiments (Fashion-MNIST-sized budgets).
std::string default_small_model();
// Describes the rules that derive the ladders from the paper families (for docs and `nfscale models`).
std::string ladder_rule();

// UserError (naming the model and the valid range) unless the family's minimum resolution <= res (NFNets:
// kMinResolution = 17, ViTs: the patch size); also rejects res <= 0.
void check_resolution(const std::string& name, int64_t res);

// Builds a member (or a JSON spec, config.name = its text) through its family; UserError on unknown name, bad spec,
// bad activation or WS form, classes/channels < 1, dropout outside [0,1).
Classifier build_model(const ModelConfig& config);

// Counts from the built model: parameters (numel of every parameter) and the MACs of one batch-1 forward at
// res x res with in_channels (convs: out_numel * kh*kw*cin/groups; linears incl. SE: in*out). Activations,
// pooling, padding, biases and element-wise ops are not counted (the reference's convention).
ModelCost count_cost(ClassifierImpl& model, int64_t resolution, int64_t in_channels);
// Same, by name: builds an uninitialised model (cheap) and counts it.
ModelCost count_cost(const std::string& name, int64_t resolution, int64_t in_channels, int64_t num_classes);

}  // namespace nfscale::models
