// family.cpp - the list of model families and lookup of a model's family by name or JSON spec.
#include "nfscale/models/family.h"

#include <algorithm>

#include "nfscale/models/nfnet_family.h"
#include "nfscale/models/vit_family.h"
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
