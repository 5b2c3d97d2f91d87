// model_source.h - the model that receives a weights file: its architecture from --model NAME, --model-json SPEC
// (the object `nfscale models --json` prints) or the file's metadata, its classes and input channels from the
// tensors, its WS form and activation from the flags, the metadata, or the naming convention (timm implies timm's).
#pragma once
#include <cstdint>
#include <string>

#include "nfscale/models/classifier.h"
#include "nfscale/models/registry.h"
#include "nfscale/weights/safetensors.h"

namespace nfscale::weights {

// The model string (registry name or spec JSON text, models::model_from_json) of a spec JSON file; UserError naming
// the file for bad JSON or a bad field.
std::string model_from_json_file(const std::string& path);

struct ModelSource {
  std::string model;       // registry name or spec JSON text ("" = from --model-json or the file's metadata)
  std::string model_json;  // path of a spec JSON
  std::string ws_form;     // "" = metadata, else the convention's default
  std::string activation;  // "" = metadata, else the convention's default, else gelu
  std::string names = "auto";
  int64_t resolution = 0;  // the grid a ViT is built for; 0 = metadata "resolution", else the spec's train_res
  std::string pos_embed_resample;  // "" = bicubic (ModelConfig's default)
};

struct BuiltModel {
  models::Classifier model;
  models::ModelInfo info;     // of config.name (the model string: registry name or spec JSON text)
  models::ModelConfig config;
  std::string convention;     // of the file's names
};

// Builds the model `set` (read from `origin`) describes (uninitialised; import_weights fills it). UserError when no
// architecture is given or found.
BuiltModel build_for_weights(const WeightSet& set, const ModelSource& source, const std::string& origin);

}  // namespace nfscale::weights
