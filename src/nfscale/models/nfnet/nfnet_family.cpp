// nfnet_family.cpp - the NFNet spec table (paper family + the derived "mini" ladder), its JSON form, and the NFNet
// family's registration: builder, minimum resolution, head, SGD+AGC defaults.
#include "nfscale/models/nfnet/nfnet_family.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nfscale/models/layers.h"
#include "nfscale/models/nfnet/nfnet.h"
#include "nfscale/models/registry.h"
#include "nfscale/util/error.h"

namespace nfscale::models {
namespace {


// Paper family rows: name, depths, train/test res, RandAugment (layers, magnitude), dropout.
struct PaperRow {
  const char* name;
  std::vector<int64_t> depths;
  int64_t train_res, test_res, ra_layers, ra_magnitude;
  double dropout;
};
const std::vector<PaperRow>& paper_rows() {
  static const std::vector<PaperRow> rows = {
      {"F0", {1, 2, 6, 3}, 192, 256, 4, 5, 0.2},      {"F1", {2, 4, 12, 6}, 224, 320, 4, 10, 0.3},
      {"F2", {3, 6, 18, 9}, 256, 352, 4, 10, 0.4},    {"F3", {4, 8, 24, 12}, 320, 416, 4, 15, 0.4},
      {"F4", {5, 10, 30, 15}, 384, 512, 4, 15, 0.5},  {"F5", {6, 12, 36, 18}, 416, 544, 4, 15, 0.5},
      {"F6", {7, 14, 42, 21}, 448, 576, 4, 15, 0.5},  {"F7", {8, 16, 48, 24}, 480, 608, 4, 15, 0.5},
  };
  return rows;
}
const std::vector<int64_t> kWidths = {256, 512, 1536, 1536};
const std::vector<int64_t> kPlusWidths = {384, 768, 2048, 2048};
const std::vector<int64_t> kStemWidths = {16, 32, 64};

// The ladder: the paper's six members of the scaling study, derived by ONE rule (see ladder_rule()).
const char* const kLadderMirrors[] = {"F0", "F1", "F3", "F3+", "F7", "F7+"};
constexpr int64_t kLadderDivisor = 8;   // every channel count (stem, stages, group width) divided by this
constexpr int64_t kLadderMinStem = 8;   // ...but stem convs keep at least this many channels: 16/8 = 2 channels
                                        // would squeeze the input through a 2-channel bottleneck
constexpr int64_t kLadderMaxMult = 8;   // the largest paper depth multiplier (F7): it keeps its full depth
constexpr int64_t kLadderRes = 32;      // train and test resolution of the ladder (28 px inputs also work)
const char* const kDefaultSmall = "mini-F3";
// Below mini-F0 the ladder goes on by width alone: micro-F0 and nano-F0 halve every channel count of mini-F0 once
// and twice (divisors 16 and 32, same depths, group width kept at 16). On Fashion-MNIST mini-F0 is not
// capacity-limited within the study's budgets, so without smaller members the compute frontier is mini-F0 alone
// (docs/study.md).
struct SmallRung {
  const char* prefix;
  int64_t divisor;
};
const SmallRung kSmallRungs[] = {{"nano", 32}, {"micro", 16}};

// Paper member Fn has depths m * [1,2,6,3] with m = n + 1; the ladder stretches the depth axis quadratically:
// stage depth d -> max(1, ceil(d * m / 8)), i.e. multiplier m -> m^2 / 8 (F7 keeps its depth, F3 halves,
// F0 gets one block per stage). Widths alone span only ~12x in FLOPs at a fixed resolution; this spans ~27x.
std::vector<int64_t> ladder_depths(const std::vector<int64_t>& depths) {
  const int64_t m = depths.at(0);  // the paper's depth multiplier (first-stage depth)
  std::vector<int64_t> out;
  for (int64_t d : depths) out.push_back(std::max<int64_t>(1, (d * m + kLadderMaxMult - 1) / kLadderMaxMult));
  return out;
}

std::vector<int64_t> divided(const std::vector<int64_t>& v, int64_t k) {
  std::vector<int64_t> out;
  for (int64_t x : v) out.push_back(std::max<int64_t>(1, x / k));
  return out;
}

std::vector<ModelSpecInfo> make_table() {
  std::vector<ModelSpecInfo> table;
  for (bool plus : {false, true}) {
    for (const auto& row : paper_rows()) {
      ModelSpecInfo s;
      s.name = std::string(row.name) + (plus ? "+" : "");
      s.mirrors = s.name;
      s.depths = row.depths;
      s.widths = plus ? kPlusWidths : kWidths;
      s.stem_widths = kStemWidths;
      s.train_res = row.train_res;
      s.test_res = row.test_res;
      s.dropout = row.dropout;
      s.randaugment_layers = row.ra_layers;
      s.randaugment_magnitude = row.ra_magnitude;
      s.note = plus ? "NFNet paper family, wider '+' variant" : "NFNet paper family";
      table.push_back(s);
    }
  }
  auto ladder_member = [&](const std::string& prefix, const char* mirror, int64_t divisor) {
    auto it = std::find_if(table.begin(), table.end(), [&](const ModelSpecInfo& s) { return s.name == mirror; });
    ModelSpecInfo s = *it;
    s.name = prefix + "-" + mirror;
    s.mirrors = mirror;
    s.is_ladder = true;
    s.depths = ladder_depths(s.depths);
    s.widths = divided(s.widths, divisor);
    s.stem_widths = divided(s.stem_widths, divisor);
    for (auto& w : s.stem_widths) w = std::max(w, kLadderMinStem);
    // The group width stays mini's 16 below mini-F0 (narrower bottlenecks become fewer groups, not thinner ones).
    s.group_width = std::max<int64_t>(1, s.group_width / std::min(divisor, kLadderDivisor));
    s.train_res = kLadderRes;
    s.test_res = kLadderRes;
    s.ref_num_classes = 10;
    s.ref_in_channels = 1;
    s.note = std::string("ladder member mirroring ") + mirror + ", channels / " + std::to_string(divisor) +
             (s.name == kDefaultSmall ? " (default small)" : "");
    return s;
  };
  for (const auto& rung : kSmallRungs) table.push_back(ladder_member(rung.prefix, "F0", rung.divisor));
  for (const char* mirror : kLadderMirrors) table.push_back(ladder_member("mini", mirror, kLadderDivisor));
  return table;
}

const std::vector<ModelSpecInfo>& table() {
  static const std::vector<ModelSpecInfo> t = make_table();
  return t;
}


std::string nfnet_ladder_rule() {
  std::ostringstream os;
  os << "mini-X = paper member X with every channel count (stem convs, stage widths, group width) divided by "
     << kLadderDivisor << " and each stage depth d -> max(1, ceil(d*m/" << kLadderMaxMult
     << ")) where m = X's depth multiplier (F0 1, F1 2, F3 4, F7 8); stem convs keep at least " << kLadderMinStem
     << " channels; train/test at " << kLadderRes << " px; below mini-F0, micro-F0 and nano-F0 divide mini-F0's "
     << "channel counts by 2 and 4 again (divisors 16 and 32, same depths, group width kept at 16)";
  return os.str();
}

class NFNetFamily : public ModelFamily {
 public:
  std::string name() const override { return "nfnet"; }
  std::vector<std::string> member_names() const override {
    std::vector<std::string> out;
    for (const auto& s : table()) out.push_back(s.name);
    return out;
  }
  ModelInfo info(const std::string& model) const override { return info_from_spec(nfnet_spec(model), name()); }
  nlohmann::json spec_json(const std::string& model) const override { return to_json(nfnet_spec(model)); }
  Classifier build(const ModelConfig& config) const override {
    auto model = std::make_shared<NFNetImpl>(nfnet_spec(config.name), config);
    set_ws_form(*model, parse_ws_form(config.ws_form, "model ws_form"));
    return model;
  }
  int64_t min_resolution(const std::string&) const override { return kMinResolution; }
  std::string min_resolution_reason() const override {
    return "NFNets downsample 32x, so smaller inputs leave a stride-2 layer with a 1x1 map";
  }
  std::string ladder_rule() const override { return nfnet_ladder_rule(); }
  TrainDefaults train_defaults() const override {
    TrainDefaults d;  // the reference recipe: SGD + Nesterov 0.9, wd 2e-5 after AGC 0.01, LR 0.1 x batch / 256
    d.optimizer.kind = optim::SgdAgc::kKind;
    d.base_lr = 0.1;
    // The paper's absolute LR at batch 4096 (0.1 x 4096 / 256 = 1.6) is also the measured optimum of the ladder at
    // batch 64 and 128 (docs/study.md): with AGC the best step does not shrink with the batch, and linear scaling
    // left small-batch runs at chance (mini-F0 on digits at batch 32: LR 0.0125).
    d.min_abs_lr = 1.6;
    return d;
  }
  std::string head_prefix() const override { return "fc."; }
};

}  // namespace

BottleneckShape bottleneck_shape(const ModelSpecInfo& spec, int64_t out_channels) {
  BottleneckShape b;
  b.width = static_cast<int64_t>(static_cast<double>(out_channels) * spec.bottleneck_ratio);
  b.groups = std::max<int64_t>(1, b.width / spec.group_width);
  if (b.width % b.groups != 0) b.width = b.groups * spec.group_width;
  return b;
}

const ModelSpecInfo& model_spec(const std::string& name) {
  for (const auto& s : table()) {
    if (s.name == name) return s;
  }
  std::string names;
  for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
  throw UserError("model name: unknown NFNet '" + name + "'; valid names: " + names +
                  " (default for small experiments: " + default_small_model() + ")");
}

ModelSpecInfo nfnet_spec(const std::string& model) {
  if (!is_json_spec(model)) return model_spec(model);
  ModelSpecInfo s = nfnet_spec_from_json(parse_json_spec(model), "model spec");
  if (s.name.empty()) s.name = model;  // a spec without a name is named by its JSON text (resolvable again)
  return s;
}

nlohmann::json to_json(const ModelSpecInfo& s) {
  return {{"family", "nfnet"},          {"name", s.name},
          {"mirrors", s.mirrors},       {"is_ladder", s.is_ladder},
          {"depths", s.depths},         {"widths", s.widths},
          {"stem_widths", s.stem_widths}, {"group_width", s.group_width},
          {"bottleneck_ratio", s.bottleneck_ratio}, {"se_ratio", s.se_ratio},
          {"alpha", s.alpha},           {"final_conv_mult", s.final_conv_mult},
          {"train_res", s.train_res},   {"test_res", s.test_res},
          {"dropout", s.dropout},       {"randaugment_layers", s.randaugment_layers},
          {"randaugment_magnitude", s.randaugment_magnitude}, {"ref_num_classes", s.ref_num_classes},
          {"ref_in_channels", s.ref_in_channels}, {"note", s.note}};
}

ModelSpecInfo nfnet_spec_from_json(const nlohmann::json& j, const std::string& origin) {
  require(j.is_object(), origin + ": an NFNet spec must be a JSON object (see `nfscale models --json`)");
  ModelSpecInfo s;
  const nlohmann::json defaults = to_json(s);
  for (auto it = j.begin(); it != j.end(); ++it)
    require(defaults.contains(it.key()), origin + ": unknown NFNet spec field '" + it.key() +
                                             "'; print a valid spec with `nfscale models --model F0 --json`");
  try {
#define NFSCALE_NF_FIELD(f) \
  if (j.contains(#f)) j.at(#f).get_to(s.f);
    NFSCALE_NF_FIELD(name) NFSCALE_NF_FIELD(mirrors) NFSCALE_NF_FIELD(is_ladder) NFSCALE_NF_FIELD(depths)
    NFSCALE_NF_FIELD(widths) NFSCALE_NF_FIELD(stem_widths) NFSCALE_NF_FIELD(group_width)
    NFSCALE_NF_FIELD(bottleneck_ratio) NFSCALE_NF_FIELD(se_ratio) NFSCALE_NF_FIELD(alpha)
    NFSCALE_NF_FIELD(final_conv_mult) NFSCALE_NF_FIELD(train_res) NFSCALE_NF_FIELD(test_res) NFSCALE_NF_FIELD(dropout)
    NFSCALE_NF_FIELD(randaugment_layers) NFSCALE_NF_FIELD(randaugment_magnitude) NFSCALE_NF_FIELD(ref_num_classes)
    NFSCALE_NF_FIELD(ref_in_channels) NFSCALE_NF_FIELD(note)
#undef NFSCALE_NF_FIELD
  } catch (const nlohmann::json::exception& e) {
    throw UserError(origin + ": an NFNet spec field has the wrong type (" + std::string(e.what()) + ")");
  }
  require(s.depths.size() == 4 && s.widths.size() == 4,
          origin + ": NFNet fields 'depths' and 'widths' need 4 entries (one per stage)");
  require(s.stem_widths.size() == 3, origin + ": NFNet field 'stem_widths' needs 3 entries");
  for (int64_t v : s.depths) require(v >= 1, origin + ": NFNet field 'depths' entries must be >= 1");
  for (int64_t v : s.widths) require(v >= 2, origin + ": NFNet field 'widths' entries must be >= 2");
  require(s.group_width >= 1, origin + ": NFNet field 'group_width' must be >= 1");
  return s;
}

const ModelFamily& nfnet_family() {
  static const NFNetFamily family;
  return family;
}

}  // namespace nfscale::models
