// model_source.h - the model that receives a weights file: its architecture from --model NAME, --model-json SPEC
// (the object `nfscale models --json` prints) or the file's metadata, its classes and input channels from the
// tensors, its WS form and activation from the flags, the metadata, or the naming convention (timm implies timm's).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/models/classifier.h"
#include "nfscale/models/registry.h"
#include "nfscale/weights/safetensors.h"

namespace nfscale::weights {

// A ModelSpecInfo from `nfscale models --json` output (an object, or an array of exactly one); fields it does not
// print keep the registry's defaults. UserError naming `origin` and the field otherwise.
models::ModelSpecInfo spec_from_json(const nlohmann::json& j, const std::string& origin);
models::ModelSpecInfo spec_from_json_file(const std::string& path);

struct ModelSource {
  std::string model;       // registry name ("" = from --model-json or the file's metadata)
  std::string model_json;  // path of a spec JSON
  std::string ws_form;     // "" = metadata, else the convention's default
  std::string activation;  // "" = metadata, else the convention's default, else gelu
  std::string names = "auto";
};

struct BuiltModel {
  models::Classifier model;
  models::ModelSpecInfo spec;
  models::ModelConfig config;
  std::string convention;  // of the file's names
};

// Builds the model `set` (read from `origin`) describes (uninitialised; import_weights fills it). UserError when no
// architecture is given or found.
BuiltModel build_for_weights(const WeightSet& set, const ModelSource& source, const std::string& origin);

}  // namespace nfscale::weights
