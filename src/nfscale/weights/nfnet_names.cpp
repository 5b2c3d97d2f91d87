// nfnet_names.cpp - the NFNet timm name map (the table is in nfnet_names.h).
#include "nfscale/weights/nfnet_names.h"

#include <torch/torch.h>

#include <stdexcept>

#include "nfscale/models/nfnet/nfnet.h"

namespace nfscale::weights {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Splits "a.b.c" at the first dot: {"a", "b.c"}.
std::pair<std::string, std::string> head_tail(const std::string& s) {
  const auto dot = s.find('.');
  return dot == std::string::npos ? std::make_pair(s, std::string()) : std::make_pair(s.substr(0, dot), s.substr(dot + 1));
}

}  // namespace

std::vector<MappedTensor> NfnetTimmNameMap::map(models::ClassifierImpl& model) const {
  auto* net = dynamic_cast<models::NFNetImpl*>(&model);
  if (!net) throw std::logic_error("NfnetTimmNameMap: model " + model.name() + " is not an NFNet");
  // Block k -> (stage, index within the stage).
  std::vector<std::pair<int64_t, int64_t>> where;
  const auto& depths = net->spec().depths;
  for (size_t s = 0; s < depths.size(); ++s)
    for (int64_t b = 0; b < depths[s]; ++b) where.emplace_back(static_cast<int64_t>(s), b);
  static const std::pair<const char*, const char*> kBlock[] = {
      {"conv0.", "conv1."},     {"conv1b.", "conv2b."},      {"conv1.", "conv2."},          {"conv2.", "conv3."},
      {"conv_shortcut.", "downsample.conv."}, {"se.fc0.", "attn_last.fc1."}, {"se.fc1.", "attn_last.fc2."},
      {"skip_gain", "skipinit_gain"},
  };
  std::vector<MappedTensor> out;
  for (const auto& p : model.named_parameters(true)) {
    const std::string& name = p.key();
    std::vector<int64_t> shape = p.value().sizes().vec();
    std::string ext;
    auto [first, rest] = head_tail(name);
    if (starts_with(first, "stem_conv")) {
      ext = "stem.conv" + std::to_string(std::stoll(first.substr(9)) + 1) + "." + rest;
    } else if (starts_with(first, "block")) {
      const auto k = static_cast<size_t>(std::stoll(first.substr(5)));
      const std::string stage = "stages." + std::to_string(where.at(k).first) + "." + std::to_string(where.at(k).second) + ".";
      for (const auto& [from, to] : kBlock)
        if (starts_with(rest, from)) {
          ext = stage + to + rest.substr(std::string(from).size());
          break;
        }
      if (starts_with(rest, "se.") && shape.size() == 2) shape = {shape[0], shape[1], 1, 1};  // SE linear = 1x1 conv
    } else if (first == "final_conv") {
      ext = name;
    } else if (first == "fc") {
      ext = "head.fc." + rest;
    }
    if (ext.empty()) throw std::logic_error("NfnetTimmNameMap: no timm name for NFNet tensor '" + name + "'");
    if (rest.size() >= 4 && rest.compare(rest.size() - 4, 4, "gain") == 0 && shape.size() == 1)
      shape = {shape[0], 1, 1, 1};  // WS gain [O] -> timm's [O,1,1,1] (skip_gain is 0-dim and stays)
    out.push_back({name, ext, shape});
  }
  for (const auto& b : model.named_buffers(true))
    throw std::logic_error("NfnetTimmNameMap: NFNets have no buffers, found '" + b.key() + "'");
  return out;
}

}  // namespace nfscale::weights
