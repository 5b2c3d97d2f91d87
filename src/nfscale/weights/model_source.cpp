// model_source.cpp - resolving and building the model a weights file is for (see model_source.h).
#include "nfscale/weights/model_source.h"

#include <nlohmann/json.hpp>

#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/weights/model_io.h"
#include "nfscale/weights/name_map.h"

namespace nfscale::weights {
namespace {

std::string meta(const WeightSet& set, const std::string& key) {
  auto it = set.metadata.find(key);
  return it == set.metadata.end() ? std::string() : it->second;
}

}  // namespace

std::string model_from_json_file(const std::string& path) {
  try {
    return models::model_from_json(nlohmann::json::parse(read_file(path)), path);
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(path + ": JSON error: " + e.what());
  }
}

BuiltModel build_for_weights(const WeightSet& set, const ModelSource& src, const std::string& origin) {
  BuiltModel out;
  models::ModelConfig& mc = out.config;
  if (!src.model_json.empty()) {
    mc.name = model_from_json_file(src.model_json);
  } else {
    mc.name = src.model;
    if (mc.name.empty()) mc.name = meta(set, "model");
    if (mc.name.empty()) mc.name = meta(set, "nfscale_model");
    require(!mc.name.empty(), origin + ": the file does not say which model it holds; pass --model NAME (see `nfscale "
                                       "models`) or --model-json SPEC.json");
  }
  out.info = models::model_info(mc.name);
  mc.init_weights = false;
  mc.num_classes = out.info.ref_num_classes;
  mc.in_channels = out.info.ref_in_channels;
  mc.resolution = src.resolution;
  if (mc.resolution == 0 && !meta(set, "resolution").empty()) mc.resolution = std::stoll(meta(set, "resolution"));
  if (!src.pos_embed_resample.empty()) mc.pos_embed_resample = src.pos_embed_resample;
  // A probe model (uninitialised, cheap) fixes the naming; the file's shapes then give classes and channels.
  auto probe = models::build_model(mc);
  out.convention = src.names == "auto" ? detect_convention(*probe, set) : src.names;
  const NameMap& map = name_map(family_of(*probe), out.convention);
  const std::string head_weight = map.classifier_prefix() + "weight";
  bool seen_conv = false;
  for (const auto& m : map.map(*probe)) {
    const torch::Tensor t = set.find(m.external);
    if (!t.defined()) continue;
    if (m.internal == head_weight && t.dim() >= 1) mc.num_classes = t.size(0);
    if (!seen_conv && m.external_shape.size() == 4 && t.dim() == 4) {  // the first conv (stem / patch embedding)
      mc.in_channels = t.size(1);
      seen_conv = true;
    }
  }
  const ConventionDefaults d = map.defaults();
  mc.ws_form = !src.ws_form.empty() ? src.ws_form : !meta(set, "ws_form").empty() ? meta(set, "ws_form") : d.ws_form;
  mc.activation = !src.activation.empty()       ? src.activation
                  : !meta(set, "activation").empty() ? meta(set, "activation")
                  : !d.activation.empty()            ? d.activation
                                                     : "gelu";
  out.model = models::build_model(mc);
  return out;
}

}  // namespace nfscale::weights
