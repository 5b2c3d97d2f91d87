// family.cpp - the list of model families and lookup of a model's family by name or JSON spec.
#include "nfscale/models/family.h"

#include <algorithm>

#include "nfscale/models/nfnet/nfnet_family.h"
#include "nfscale/models/vit/vit_family.h"
#include "nfscale/util/error.h"

namespace nfscale::models {

bool ModelFamily::has_member(const std::string& name) const {
  const auto names = member_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

const std::vector<const ModelFamily*>& families() {
  // Explicit list instead of static self-registration: objects of a static library that nothing references would
  // be dropped by the linker together with their registrations.
  static const std::vector<const ModelFamily*> all = {&nfnet_family(), &vit_family()};
  return all;
}

bool is_json_spec(const std::string& model) {
  const auto p = model.find_first_not_of(" \t\r\n");
  return p != std::string::npos && model[p] == '{';
}

nlohmann::json parse_json_spec(const std::string& model) {
  try {
    return nlohmann::json::parse(model);
  } catch (const nlohmann::json::exception& e) {
    throw UserError("model: '" + model + "' looks like a JSON spec but does not parse (" + e.what() +
                    "); print a valid one with `nfscale models --model NAME --json`");
  }
}

std::string model_from_json(const nlohmann::json& j_in, const std::string& origin) {
  const nlohmann::json* j = &j_in;
  if (j_in.is_array()) {
    require(j_in.size() == 1, origin + ": holds " + std::to_string(j_in.size()) +
                                   " model specs; keep exactly one (e.g. `nfscale models --model mini-F0 --json`)");
    j = &j_in[0];
  }
  require(j->is_object() && j->contains("family") && (*j)["family"].is_string(),
          origin + ": expected a model spec object with a 'family' field, as `nfscale models --json` prints it");
  // What `nfscale models --json` adds to a spec: counts and timings, not architecture.
  static const char* const kListingOnly[] = {"is_default_small", "params", "macs_per_image_train_res",
                                             "macs_per_image_test_res", "train_flops_per_image", "flop_convention",
                                             "step_seconds", "step_batch", "train_images_per_second"};
  nlohmann::json given = *j;
  for (const char* k : kListingOnly) given.erase(k);
  if (given.contains("num_classes")) given["ref_num_classes"] = given["num_classes"], given.erase("num_classes");
  if (given.contains("in_channels")) given["ref_in_channels"] = given["in_channels"], given.erase("in_channels");
  const std::string name = given.value("name", std::string());
  nlohmann::json spec = given;
  for (const ModelFamily* f : families()) {
    if (f->name() != given["family"] || name.empty() || !f->has_member(name)) continue;
    spec = f->spec_json(name);  // the member's values for every field the file leaves out
    const nlohmann::json member = spec;
    spec.update(given);
    if (spec == member) return name;
  }
  const std::string text = spec.dump();
  try {
    family_of(text).info(text);  // the family's checks of every field
  } catch (const UserError& e) {
    throw UserError(origin + ": " + e.what());
  }
  return text;
}

const ModelFamily& family_of(const std::string& model) {
  if (is_json_spec(model)) {
    const nlohmann::json j = parse_json_spec(model);
    const std::string fam = j.is_object() && j.contains("family") && j["family"].is_string() ? j["family"] : "";
    for (const ModelFamily* f : families())
      if (f->name() == fam) return *f;
    std::string names;
    for (const ModelFamily* f : families()) names += (names.empty() ? "" : ", ") + f->name();
    throw UserError("model spec: field 'family' is '" + fam + "'; it must be one of " + names);
  }
  for (const ModelFamily* f : families())
    if (f->has_member(model)) return *f;
  std::string names;
  for (const ModelFamily* f : families())
    for (const auto& n : f->member_names()) names += (names.empty() ? "" : ", ") + n;
  throw UserError("model name: unknown model '" + model + "'; valid names: " + names +
                  " (or a JSON spec as printed by `nfscale models --json`; default for small experiments: mini-F3)");
}

}  // namespace nfscale::models
