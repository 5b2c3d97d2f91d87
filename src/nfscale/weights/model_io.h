// model_io.h - moving a model's tensors to and from a WeightSet through a NameMap: import with one error that lists
// every missing, unexpected and mis-shaped tensor (strict, or classifier-replacing for fine-tuning), export under
// either naming, and the metadata that describes the model in an exported file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/weights/name_map.h"
#include "nfscale/weights/safetensors.h"

namespace nfscale::models {
class ClassifierImpl;
struct ModelConfig;
}  // namespace nfscale::models

namespace nfscale::weights {

// The family of a built model ("nfnet", "vit"); the place a new family adds its line.
std::string family_of(models::ClassifierImpl& model);

// The convention ("nfscale" or "timm") whose names cover most of `set`'s tensors for this model (metadata "names"
// wins when present).
std::string detect_convention(models::ClassifierImpl& model, const WeightSet& set);

struct ImportOptions {
  std::string names = "auto";  // auto | nfscale | timm
  // strict: every model tensor present with its shape and no tensor left over. Not strict: the classifier head may
  // be missing or of another size (it keeps its fresh initialisation: fine-tuning to other classes) and tensors the
  // model does not have are ignored; everything else must still match.
  bool strict = true;
};
struct ImportReport {
  std::string convention;
  int64_t loaded = 0;
  std::vector<std::string> kept;     // model tensors left as built (non-strict classifier)
  std::vector<std::string> ignored;  // file tensors the model does not have (non-strict)
};

// Copies the tensors of `set` into `model` (any device and dtype: converted to the model's). Throws one UserError
// naming `origin` and listing every missing, unexpected and mis-shaped tensor; the model is untouched then.
ImportReport import_weights(models::ClassifierImpl& model, const WeightSet& set, const ImportOptions& options,
                            const std::string& origin);

// The model's tensors (CPU copies, contiguous) under `convention`'s names and shapes, with `metadata`.
WeightSet export_weights(models::ClassifierImpl& model, const std::string& convention, const Metadata& metadata = {});

// Metadata describing the model, written into exported files and read back by build_for_weights (model_source.h):
// family, model (config.name: a registry name or spec JSON), num_classes, in_channels, activation, ws_form, names,
// producer, and resolution when config.resolution is set (the grid a ViT's position embedding was built for).
Metadata model_metadata(models::ClassifierImpl& model, const models::ModelConfig& config, const std::string& convention);

}  // namespace nfscale::weights
