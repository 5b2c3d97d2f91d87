// name_map.h - how a model's tensors are named and shaped in a weights file: one NameMap per (family, convention),
// "nfscale" (the modules' own dotted names, every family) or "timm" (timm's state_dict names). The table of maps in
// name_map.cpp is the single truth; a new family adds its map file and one row there.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nfscale::models {
class ClassifierImpl;
}

namespace nfscale::weights {

// One tensor of the model (parameter or buffer) and its name and shape in the file.
struct MappedTensor {
  std::string internal;                 // the module's dotted name, e.g. "block0.conv0.weight"
  std::string external;                 // the file's name, e.g. "stages.0.0.conv1.weight"
  std::vector<int64_t> external_shape;  // the file's shape (same numel; e.g. timm's gains are [O,1,1,1])
};

// What a convention implies about the model when weights in it are imported (timm: its WS form and exact GELU).
struct ConventionDefaults {
  std::string ws_form = "deepmind";
  std::string activation;  // "" = keep the model's
};

class NameMap {
 public:
  virtual ~NameMap() = default;
  virtual std::string family() const = 0;      // "nfnet" | "vit"
  virtual std::string convention() const = 0;  // "nfscale" | "timm"
  // Every parameter and buffer of `model`, in the model's order, with its external name and shape.
  virtual std::vector<MappedTensor> map(models::ClassifierImpl& model) const = 0;
  // Internal-name prefix of the classifier head ("fc." for NFNets, "head." for ViTs): what a fine-tune may replace.
  virtual std::string classifier_prefix() const = 0;
  virtual ConventionDefaults defaults() const { return {}; }
};

// The map of `family` in `convention` ("nfscale" or "timm"); UserError naming both and the valid conventions.
const NameMap& name_map(const std::string& family, const std::string& convention);
// The conventions `family` has a map for ("nfscale" first).
std::vector<std::string> name_conventions(const std::string& family);

// The family-agnostic identity map (module names and shapes as they are).
class NfscaleNameMap : public NameMap {
 public:
  NfscaleNameMap(std::string family, std::string classifier_prefix)
      : family_(std::move(family)), classifier_prefix_(std::move(classifier_prefix)) {}
  std::string family() const override { return family_; }
  std::string convention() const override { return "nfscale"; }
  std::vector<MappedTensor> map(models::ClassifierImpl& model) const override;
  std::string classifier_prefix() const override { return classifier_prefix_; }

 private:
  std::string family_, classifier_prefix_;
};

}  // namespace nfscale::weights
