// vit_family.cpp - the ViT spec table (named members + the mini-ViT ladder) and the ViT family's registration:
// builder, minimum resolution (one patch), head, AdamW defaults.
#include "nfscale/models/vit/vit_family.h"

#include <sstream>

#include "nfscale/models/registry.h"
#include "nfscale/util/error.h"

namespace nfscale::models {
namespace {

// Named shapes (big_vision decode_variant): width / depth / MLP / heads.
struct Row {
  const char* size;
  int64_t width, depth, mlp, heads;
};
const Row kRows[] = {{"Ti", 192, 12, 768, 3},     {"S", 384, 12, 1536, 6},    {"M", 512, 12, 2048, 8},
                     {"B", 768, 12, 3072, 12},    {"L", 1024, 24, 4096, 16},  {"H", 1280, 32, 5120, 16},
                     {"g", 1408, 40, 6144, 16},   {"G", 1664, 48, 8192, 16}};

// The mini-ViT ladder: members Ti, S, M, B, L (patch 16) with every width (and so the MLP) divided by 8 - heads kept,
// so each head has 8 channels - depth d -> ceil(d / 8), patch 4, trained and tested at 32 px (64 tokens).
const char* const kVitLadderMirrors[] = {"Ti", "S", "M", "B", "L"};
constexpr int64_t kVitLadderDivisor = 8, kLadderDepthDivisor = 8, kLadderPatch = 4, kVitLadderRes = 32;

std::vector<ViTSpec> make_vit_table() {
  std::vector<ViTSpec> t;
  for (int64_t patch : {16, 14}) {
    for (const Row& r : kRows) {
      ViTSpec s;
      s.name = std::string("ViT-") + r.size + "-" + std::to_string(patch);
      s.mirrors = s.name;
      s.patch = patch;
      s.width = r.width;
      s.depth = r.depth;
      s.mlp_dim = r.mlp;
      s.heads = r.heads;
      s.pool = "token";  // timm's layout, in which the published parameter and MAC checks are quoted
      s.note = std::string("ViT-") + r.size + "/" + std::to_string(patch) + " (big_vision shape)";
      t.push_back(s);
    }
  }
  ViTSpec so;  // SoViT-400m/14 (Alabdulmohsin et al. 2023); its MAP head is replaced by the class token here
  so.name = "SoViT-400m-14";
  so.mirrors = so.name;
  so.patch = 14;
  so.width = 1152;
  so.depth = 27;
  so.mlp_dim = 4304;
  so.heads = 16;
  so.note = "SoViT-400m/14 shape (class-token head instead of MAP)";
  t.push_back(so);
  for (const char* size : kVitLadderMirrors) {
    for (const Row& r : kRows) {
      if (std::string(r.size) != size) continue;
      ViTSpec s;
      s.name = std::string("mini-ViT-") + size;
      s.mirrors = std::string("ViT-") + size + "-16";
      s.is_ladder = true;
      s.patch = kLadderPatch;
      s.width = r.width / kVitLadderDivisor;
      s.mlp_dim = r.mlp / kVitLadderDivisor;
      s.heads = r.heads;
      s.depth = (r.depth + kLadderDepthDivisor - 1) / kLadderDepthDivisor;
      s.pool = "gap";  // big_vision's default head
      s.train_res = s.test_res = kVitLadderRes;
      s.ref_num_classes = 10;
      s.ref_in_channels = 1;
      s.note = "ladder member mirroring ViT-" + std::string(size) + "/16";
      t.push_back(s);
    }
  }
  return t;
}

class ViTFamily : public ModelFamily {
 public:
  std::string name() const override { return "vit"; }
  std::vector<std::string> member_names() const override {
    std::vector<std::string> out;
    for (const auto& s : vit_specs()) out.push_back(s.name);
    return out;
  }
  ModelInfo info(const std::string& model) const override { return info_from_spec(vit_spec(model), name()); }
  nlohmann::json spec_json(const std::string& model) const override { return to_json(vit_spec(model)); }
  Classifier build(const ModelConfig& config) const override {
    // The MLP's GELU: "gelu" keeps the spec's form (field 'gelu'), "gelu_erf" forces the exact one (timm's).
    ViTSpec spec = vit_spec(config.name);
    require(config.activation == "gelu" || config.activation == "gelu_erf",
            "model activation: '" + config.activation + "' for ViT " + spec.name +
                "; a ViT's MLP takes gelu (the spec's form, field 'gelu': tanh or erf) or gelu_erf (exact)");
    if (config.activation == "gelu_erf") spec.gelu = "erf";
    return std::make_shared<ViTImpl>(spec, config);
  }
  int64_t min_resolution(const std::string& model) const override { return vit_spec(model).patch; }
  std::string min_resolution_reason() const override { return "a ViT needs at least one whole patch"; }
  std::string ladder_rule() const override { return vit_ladder_rule(); }
  TrainDefaults train_defaults() const override {
    // big_vision's from-scratch recipe: Adam (0.9, 0.999), clip at global norm 1.0, decoupled wd 1e-4 on kernels
    // (big_vision convention); LR 1e-3 at batch 1024 (= DeiT's 5e-4 x batch / 512) = 2.5e-4 per 256 examples.
    TrainDefaults d;
    d.optimizer.kind = optim::AdamW::kKind;
    d.optimizer.adamw = optim::AdamWOptions{};
    d.base_lr = 2.5e-4;
    return d;
  }
  std::string head_prefix() const override { return "head."; }
};

}  // namespace

const std::vector<ViTSpec>& vit_specs() {
  static const std::vector<ViTSpec> t = make_vit_table();
  return t;
}

ViTSpec vit_spec(const std::string& model) {
  if (is_json_spec(model)) {
    ViTSpec s = vit_spec_from_json(parse_json_spec(model), "model spec");
    if (s.name.empty()) s.name = model;  // a spec without a name is named by its JSON text (resolvable again)
    return s;
  }
  for (const auto& s : vit_specs())
    if (s.name == model) return s;
  std::string names;
  for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
  throw UserError("model name: unknown ViT '" + model + "'; valid names: " + names);
}

std::string vit_ladder_rule() {
  std::ostringstream os;
  os << "mini-ViT-X = ViT-X/16 with width and MLP width divided by " << kVitLadderDivisor
     << " (heads kept), depth d -> ceil(d/" << kLadderDepthDivisor << "), patch " << kLadderPatch
     << ", gap head; train/test at " << kVitLadderRes << " px";
  return os.str();
}

const ModelFamily& vit_family() {
  static const ViTFamily family;
  return family;
}

}  // namespace nfscale::models
