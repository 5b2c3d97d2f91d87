// registry.cpp - the registry over every model family (family.h): names, shared info, resolution checks, the
// build entry, and cost counting from the built model in counting mode.
#include "nfscale/models/registry.h"

#include <torch/torch.h>

#include "nfscale/models/cost_counter.h"
#include "nfscale/models/layers.h"
#include "nfscale/util/error.h"

namespace nfscale::models {
namespace {
const char* const kRegistryDefaultSmall = "mini-F3";
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const ModelFamily* f : families())
    for (const auto& n : f->member_names()) out.push_back(n);
  return out;
}

ModelInfo model_info(const std::string& model) { return family_of(model).info(model); }

std::string default_small_model() { return kRegistryDefaultSmall; }

std::string ladder_rule() {
  std::string out;
  for (const ModelFamily* f : families()) out += (out.empty() ? "" : "; ") + f->ladder_rule();
  return out;
}

void check_resolution(const std::string& name, int64_t res) {
  const ModelFamily& family = family_of(name);
  const ModelInfo info = family.info(name);
  const int64_t min_res = family.min_resolution(name);
  require(res >= min_res, "resolution " + std::to_string(res) + " for model " + info.name + ": must be an integer >= " +
                              std::to_string(min_res) + " (" + family.min_resolution_reason() +
                              "); this model trains at " + std::to_string(info.train_res) + " and tests at " +
                              std::to_string(info.test_res));
}

Classifier build_model(const ModelConfig& config) {
  parse_ws_form(config.ws_form, "model ws_form");  // checked for every family (only NFNets have WS convs)
  return family_of(config.name).build(config);
}

ModelCost count_cost(ClassifierImpl& model, int64_t resolution, int64_t in_channels) {
  // By the built model, not by its name: a JSON spec's "name" need not be a registry name.
  require(resolution >= model.min_resolution(),
          "resolution " + std::to_string(resolution) + " for model " + model.name() + ": must be an integer >= " +
              std::to_string(model.min_resolution()) + " (the smallest input this model takes)");
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
