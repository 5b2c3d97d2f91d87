// registry.cpp - the model table (paper NFNet family + the derived "mini" ladder), the single builder, name and
// resolution checks, and cost counting from the built model in counting mode.
#include "nfscale/models/registry.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "nfscale/models/cost_counter.h"
#include "nfscale/models/nfnet.h"
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
  for (const char* mirror : kLadderMirrors) {
    auto it = std::find_if(table.begin(), table.end(), [&](const ModelSpecInfo& s) { return s.name == mirror; });
    ModelSpecInfo s = *it;
    s.name = std::string("mini-") + mirror;
    s.mirrors = mirror;
    s.is_ladder = true;
    s.depths = ladder_depths(s.depths);
    s.widths = divided(s.widths, kLadderDivisor);
    s.stem_widths = divided(s.stem_widths, kLadderDivisor);
    for (auto& w : s.stem_widths) w = std::max(w, kLadderMinStem);
    s.group_width = std::max<int64_t>(1, s.group_width / kLadderDivisor);
    s.train_res = kLadderRes;
    s.test_res = kLadderRes;
    s.ref_num_classes = 10;
    s.ref_in_channels = 1;
    s.note = std::string("ladder member mirroring ") + mirror + (s.name == kDefaultSmall ? " (default small)" : "");
    table.push_back(s);
  }
  return table;
}

const std::vector<ModelSpecInfo>& table() {
  static const std::vector<ModelSpecInfo> t = make_table();
  return t;
}

std::string joined_names() {
  std::string out;
  for (const auto& s : table()) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

}  // namespace

BottleneckShape bottleneck_shape(const ModelSpecInfo& spec, int64_t out_channels) {
  BottleneckShape b;
  b.width = static_cast<int64_t>(static_cast<double>(out_channels) * spec.bottleneck_ratio);
  b.groups = std::max<int64_t>(1, b.width / spec.group_width);
  if (b.width % b.groups != 0) b.width = b.groups * spec.group_width;
  return b;
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& s : table()) out.push_back(s.name);
  return out;
}

const ModelSpecInfo& model_spec(const std::string& name) {
  for (const auto& s : table()) {
    if (s.name == name) return s;
  }
  throw UserError("model name: unknown model '" + name + "'; valid names: " + joined_names() +
                  " (default for small experiments: " + kDefaultSmall + ")");
}

std::string default_small_model() { return kDefaultSmall; }

std::string ladder_rule() {
  std::ostringstream os;
  os << "mini-X = paper member X with every channel count (stem convs, stage widths, group width) divided by "
     << kLadderDivisor << " and each stage depth d -> max(1, ceil(d*m/" << kLadderMaxMult
     << ")) where m = X's depth multiplier (F0 1, F1 2, F3 4, F7 8); stem convs keep at least " << kLadderMinStem
     << " channels; train/test at " << kLadderRes << " px";
  return os.str();
}

void check_resolution(const std::string& name, int64_t res) {
  const ModelSpecInfo& spec = model_spec(name);
  require(res >= kMinResolution,
          "resolution " + std::to_string(res) + " for model " + name + ": must be an integer >= " +
              std::to_string(kMinResolution) + " (NFNets downsample 32x, so smaller inputs leave a stride-2 layer " +
              "with a 1x1 map); this model trains at " + std::to_string(spec.train_res) + " and tests at " +
              std::to_string(spec.test_res));
}

Classifier build_model(const ModelConfig& config) { return build_model(model_spec(config.name), config); }

Classifier build_model(const ModelSpecInfo& spec, const ModelConfig& config) {
  const WsForm ws_form = parse_ws_form(config.ws_form, "model ws_form");
  // One builder per family (a ViT family would add its branch here); the NFNet builder reads only the spec row.
  if (spec.family == "nfnet") {
    auto model = std::make_shared<NFNetImpl>(spec, config);
    set_ws_form(*model, ws_form);
    return model;
  }
  throw UserError("model family: no builder for family '" + spec.family + "' of model " + spec.name +
                  "; valid families: nfnet");
}

ModelCost count_cost(ClassifierImpl& model, int64_t resolution, int64_t in_channels) {
  check_resolution(model.name(), resolution);
  ModelCost cost;
  for (const auto& p : model.parameters()) cost.params += p.numel();
  const bool was_training = model.is_training();
  model.eval();
  CostCounter counter;
  {
    torch::NoGradGuard no_grad;
    CountingScope scope(counter);
    // Meta tensors carry shapes only: the element-wise ops between the counted layers cost nothing.
    auto x = torch::empty({1, in_channels, resolution, resolution}, torch::TensorOptions().device(torch::kMeta));
    model.forward(x);
  }
  model.train(was_training);
  cost.macs_per_image = counter.macs;
  return cost;
}

ModelCost count_cost(const std::string& name, int64_t resolution, int64_t in_channels, int64_t num_classes) {
  check_resolution(name, resolution);
  ModelConfig config;
  config.name = name;
  config.num_classes = num_classes;
  config.in_channels = in_channels;
  config.init_weights = false;
  auto model = build_model(config);
  return count_cost(*model, resolution, in_channels);
}

}  // namespace nfscale::models
