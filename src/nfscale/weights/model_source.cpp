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

models::ModelSpecInfo spec_from_json(const nlohmann::json& j_in, const std::string& origin) {
  const nlohmann::json* j = &j_in;
  if (j_in.is_array()) {
    require(j_in.size() == 1, origin + ": holds " + std::to_string(j_in.size()) +
                                   " model specs; keep exactly one (e.g. `nfscale models --model mini-F0 --json`)");
    j = &j_in[0];
  }
  require(j->is_object(), origin + ": expected a model spec object as `nfscale models --json` prints it");
  models::ModelSpecInfo s;
  if (j->contains("name") && (*j)["name"].is_string()) {
    // Start from the registry row when the name is known, so unprinted fields keep that member's values.
    for (const auto& n : models::model_names())
      if (n == (*j)["name"].get<std::string>()) s = models::model_spec(n);
  }
  try {
    auto get = [&](const char* key, auto& field) {
      if (j->contains(key)) (*j)[key].get_to(field);
    };
    get("name", s.name);
    get("family", s.family);
    get("depths", s.depths);
    get("widths", s.widths);
    get("stem_widths", s.stem_widths);
    get("group_width", s.group_width);
    get("bottleneck_ratio", s.bottleneck_ratio);
    get("se_ratio", s.se_ratio);
    get("alpha", s.alpha);
    get("final_conv_mult", s.final_conv_mult);
    get("train_res", s.train_res);
    get("test_res", s.test_res);
    get("num_classes", s.ref_num_classes);
    get("in_channels", s.ref_in_channels);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(origin + ": a field has the wrong type (" + e.what() + ")");
  }
  require(!s.name.empty(), origin + ": field 'name' is missing");
  require(s.depths.size() == 4 && s.widths.size() == 4,
          origin + ": 'depths' and 'widths' need 4 entries (one per stage)");
  require(s.stem_widths.size() == 3, origin + ": 'stem_widths' needs 3 entries");
  require(s.group_width >= 1, origin + ": 'group_width' must be >= 1");
  for (auto v : s.depths) require(v >= 1, origin + ": every 'depths' entry must be >= 1");
  for (auto v : s.widths) require(v >= 2, origin + ": every 'widths' entry must be >= 2");
  return s;
}

models::ModelSpecInfo spec_from_json_file(const std::string& path) {
  try {
    return spec_from_json(nlohmann::json::parse(read_file(path)), path);
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(path + ": JSON error: " + e.what());
  }
}

BuiltModel build_for_weights(const WeightSet& set, const ModelSource& src, const std::string& origin) {
  BuiltModel out;
  if (!src.model_json.empty()) {
    out.spec = spec_from_json_file(src.model_json);
  } else {
    std::string name = src.model;
    if (name.empty()) name = meta(set, "model");
    if (name.empty()) name = meta(set, "nfscale_model");
    require(!name.empty(), origin + ": the file does not say which model it holds; pass --model NAME (see `nfscale "
                                    "models`) or --model-json SPEC.json");
    out.spec = models::model_spec(name);
  }
  models::ModelConfig& mc = out.config;
  mc.name = out.spec.name;
  mc.init_weights = false;
  mc.num_classes = out.spec.ref_num_classes;
  mc.in_channels = out.spec.ref_in_channels;
  // A probe model (uninitialised, cheap) fixes the naming; the file's shapes then give classes and channels.
  auto probe = models::build_model(out.spec, mc);
  out.convention = src.names == "auto" ? detect_convention(*probe, set) : src.names;
  const NameMap& map = name_map(family_of(*probe), out.convention);
  const auto mapped = map.map(*probe);
  const std::string head_weight = map.classifier_prefix() + "weight";
  for (const auto& m : mapped) {
    const torch::Tensor t = set.find(m.external);
    if (!t.defined()) continue;
    if (m.internal == head_weight && t.dim() >= 1) mc.num_classes = t.size(0);
    if (&m == &mapped.front() && t.dim() >= 2) mc.in_channels = t.size(1);  // the first conv's input channels
  }
  const ConventionDefaults d = map.defaults();
  mc.ws_form = !src.ws_form.empty() ? src.ws_form : !meta(set, "ws_form").empty() ? meta(set, "ws_form") : d.ws_form;
  mc.activation = !src.activation.empty()       ? src.activation
                  : !meta(set, "activation").empty() ? meta(set, "activation")
                  : !d.activation.empty()            ? d.activation
                                                     : "gelu";
  out.model = models::build_model(out.spec, mc);
  return out;
}

}  // namespace nfscale::weights
