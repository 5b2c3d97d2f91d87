// family.h - the model-family seam: each family (NFNet, ViT) describes its members (spec table, JSON specs), builds
// them behind the Classifier interface, and owns its facts the trainer must not know (minimum resolution, head
// name, default optimiser and its hyper-parameters). External weight names (timm's) are the weights area's name maps
// (weights/name_map.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nfscale/models/classifier.h"
#include "nfscale/optim/optimizer_factory.h"

namespace nfscale::models {

// What every member shares, for listings, the trainer and the study.
struct ModelInfo {
  std::string name, family, mirrors;
  bool is_ladder = false;            // a scaled-down member for small experiments
  int64_t train_res = 0, test_res = 0;
  double dropout = 0.0;
  int64_t randaugment_layers = 0, randaugment_magnitude = 0;
  int64_t ref_num_classes = 1000, ref_in_channels = 3;  // the setting the member's counts are quoted at
  std::string note;
};

// The shared fields of a family's spec struct (both spec structs name them alike).
template <class Spec>
ModelInfo info_from_spec(const Spec& s, const std::string& family) {
  ModelInfo i;
  i.name = s.name;
  i.family = family;
  i.mirrors = s.mirrors;
  i.is_ladder = s.is_ladder;
  i.train_res = s.train_res;
  i.test_res = s.test_res;
  i.dropout = s.dropout;
  i.randaugment_layers = s.randaugment_layers;
  i.randaugment_magnitude = s.randaugment_magnitude;
  i.ref_num_classes = s.ref_num_classes;
  i.ref_in_channels = s.ref_in_channels;
  i.note = s.note;
  return i;
}

// The family's training recipe defaults (docs/optim.md): the optimiser kind with its hyper-parameters and the base
// learning rate at batch 256 (the trainer scales it linearly with the batch).
struct TrainDefaults {
  optim::OptimizerConfig optimizer;
  double base_lr = 0.1;
  // Floor of the default absolute LR at small batches (0 = none): the default base LR is raised to
  // min_abs_lr * 256 / batch where that is larger, so below the batch min_abs_lr / base_lr * 256 the default
  // absolute LR stays min_abs_lr instead of shrinking with the batch. Applies to the default only, never to --lr.
  double min_abs_lr = 0.0;
};

class ModelFamily {
 public:
  virtual ~ModelFamily() = default;
  virtual std::string name() const = 0;                      // "nfnet", "vit"
  virtual std::vector<std::string> member_names() const = 0;  // registry names: paper members first, then ladder
  virtual bool has_member(const std::string& name) const;
  // `model` is a member name or a JSON spec of this family (spec_json's form); UserError if it is neither.
  virtual ModelInfo info(const std::string& model) const = 0;
  virtual nlohmann::json spec_json(const std::string& model) const = 0;  // the full architecture, with "family"
  virtual Classifier build(const ModelConfig& config) const = 0;
  virtual int64_t min_resolution(const std::string& model) const = 0;
  virtual std::string min_resolution_reason() const = 0;      // one clause for the error message
  virtual std::string ladder_rule() const = 0;
  virtual TrainDefaults train_defaults() const = 0;
  // Parameter-name prefix of the classifier head ("fc." / "head."), left out when fine-tuning loads weights.
  virtual std::string head_prefix() const = 0;
};

// Every family, in listing order (NFNet, ViT). Each family registers itself in this one list (family.cpp).
const std::vector<const ModelFamily*>& families();
// The family of a member name or JSON spec ("{...}" with a "family" field); UserError listing the valid names.
const ModelFamily& family_of(const std::string& model);
// True when `model` is a JSON spec rather than a name.
bool is_json_spec(const std::string& model);
// Parses a JSON spec given as text; UserError naming the model string on bad JSON.
nlohmann::json parse_json_spec(const std::string& model);
// The model string (ModelConfig::name, TrainConfig::model) of a spec JSON as `nfscale models --json` prints it: an
// object, or an array of exactly one. The listing's counts and timings are dropped, its "num_classes" and
// "in_channels" become the spec's ref_num_classes / ref_in_channels, and a spec whose "name" is a registry member
// starts from that member (fields it leaves out keep the member's values). Returns the member's name when the spec
// is the member unchanged, else the spec as compact JSON text. UserError naming `origin` and the field otherwise.
std::string model_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace nfscale::models
