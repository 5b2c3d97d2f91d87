// model_io.cpp - import/export of a model's tensors through a NameMap (see model_io.h).
#include "nfscale/weights/model_io.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "nfscale/models/classifier.h"
#include "nfscale/models/nfnet/nfnet.h"
#include "nfscale/models/vit/vit.h"
#include "nfscale/util/error.h"

namespace nfscale::weights {
namespace {

std::string shape_str(const std::vector<int64_t>& s) { return c10::str(c10::IntArrayRef(s)); }

// "a, b, c" with at most `max` items and "(+N more)".
std::string listing(const std::vector<std::string>& items, size_t max = 12) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < max; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > max) out += " (+" + std::to_string(items.size() - max) + " more)";
  return out;
}

size_t covered(const std::vector<MappedTensor>& names, const std::set<std::string>& in_file) {
  size_t n = 0;
  for (const auto& m : names) n += in_file.count(m.external);
  return n;
}

}  // namespace

std::string family_of(models::ClassifierImpl& model) {
  if (dynamic_cast<models::NFNetImpl*>(&model)) return "nfnet";
  if (dynamic_cast<models::ViTImpl*>(&model)) return "vit";
  throw std::logic_error("family_of: model " + model.name() + " is of a family with no weights support (model_io.cpp)");
}

std::string detect_convention(models::ClassifierImpl& model, const WeightSet& set) {
  const auto it = set.metadata.find("names");
  const std::string family = family_of(model);
  const auto conventions = name_conventions(family);
  if (it != set.metadata.end() && std::find(conventions.begin(), conventions.end(), it->second) != conventions.end())
    return it->second;
  std::set<std::string> in_file;
  for (const auto& t : set.tensors) in_file.insert(t.name);
  // Where two conventions name the tensors alike (ViTs: nfscale's names are timm's), a file nfscale did not write
  // (no "producer" metadata) is taken as the other tool's, so its convention defaults (timm's GELU) apply.
  const bool ours = set.metadata.count("producer") && set.metadata.at("producer") == "nfscale";
  std::string best = "nfscale";
  size_t best_n = 0;
  for (const auto& c : conventions) {
    const size_t n = covered(name_map(family, c).map(model), in_file);
    if (n > best_n || (n == best_n && n > 0 && !ours && c != "nfscale")) best = c, best_n = n;
  }
  return best;
}

ImportReport import_weights(models::ClassifierImpl& model, const WeightSet& set, const ImportOptions& o,
                            const std::string& origin) {
  ImportReport report;
  report.convention = o.names == "auto" ? detect_convention(model, set) : o.names;
  const NameMap& map = name_map(family_of(model), report.convention);
  const std::string head = map.classifier_prefix();
  std::map<std::string, torch::Tensor> file;
  for (const auto& t : set.tensors) file[t.name] = t.tensor;
  std::map<std::string, torch::Tensor> own;
  for (const auto& p : model.named_parameters(true)) own[p.key()] = p.value();
  for (const auto& b : model.named_buffers(true)) own[b.key()] = b.value();

  std::vector<std::string> missing, misshaped;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (model tensor, file tensor reshaped)
  std::set<std::string> used;
  for (const auto& m : map.map(model)) {
    const bool is_head = !head.empty() && m.internal.rfind(head, 0) == 0;
    auto it = file.find(m.external);
    if (it == file.end()) {
      if (o.strict || !is_head) missing.push_back(m.external);
      else report.kept.push_back(m.internal);
      continue;
    }
    used.insert(m.external);
    torch::Tensor stored = it->second;
    if (stored.sizes().vec() != m.external_shape && own.at(m.internal).sizes().vec() == m.external_shape)
      stored = model.adapt_loaded(m.internal, stored);  // e.g. a ViT position embedding of another grid: resampled
    if (stored.sizes().vec() != m.external_shape) {
      if (o.strict || !is_head)
        misshaped.push_back(m.external + " (file " + shape_str(stored.sizes().vec()) + ", model " +
                            shape_str(m.external_shape) + ")");
      else report.kept.push_back(m.internal);
      continue;
    }
    const torch::Tensor& dst = own.at(m.internal);
    copies.emplace_back(dst, stored.reshape(dst.sizes()));
  }
  std::vector<std::string> unexpected;
  for (const auto& t : set.tensors)
    if (!used.count(t.name)) (o.strict ? unexpected : report.ignored).push_back(t.name);
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string msg = origin + ": does not fit model " + model.name() + " (" + report.convention + " names):";
    if (!missing.empty()) msg += "\n  missing (" + std::to_string(missing.size()) + "): " + listing(missing);
    if (!unexpected.empty()) msg += "\n  unexpected (" + std::to_string(unexpected.size()) + "): " + listing(unexpected);
    if (!misshaped.empty()) msg += "\n  mis-shaped (" + std::to_string(misshaped.size()) + "): " + listing(misshaped);
    msg += "\n  check --model / --model-json (and --names)";
    if (o.strict) msg += "; to replace a classifier of another size, turn --strict off";
    throw UserError(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);  // converts dtype and device
  report.loaded = static_cast<int64_t>(copies.size());
  return report;
}

WeightSet export_weights(models::ClassifierImpl& model, const std::string& convention, const Metadata& metadata) {
  const NameMap& map = name_map(family_of(model), convention);
  std::map<std::string, torch::Tensor> own;
  for (const auto& p : model.named_parameters(true)) own[p.key()] = p.value();
  for (const auto& b : model.named_buffers(true)) own[b.key()] = b.value();
  WeightSet set;
  set.metadata = metadata;
  for (const auto& m : map.map(model))
    set.tensors.push_back({m.external, own.at(m.internal).detach().to(torch::kCPU).contiguous().reshape(m.external_shape)});
  return set;
}

Metadata model_metadata(models::ClassifierImpl& model, const models::ModelConfig& config, const std::string& convention) {
  Metadata meta = {{"family", family_of(model)},
          {"model", config.name.empty() ? model.name() : config.name},
          {"num_classes", std::to_string(model.num_classes())},
          {"in_channels", std::to_string(model.in_channels())},
          {"activation", config.activation},
          {"ws_form", config.ws_form},
          {"names", convention},
          {"producer", "nfscale"}};
  if (config.resolution > 0) meta["resolution"] = std::to_string(config.resolution);  // a ViT's position grid
  return meta;
}

}  // namespace nfscale::weights
