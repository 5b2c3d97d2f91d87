// cmd_models.cpp - `nfscale models`: lists every model (NFNet and ViT families and their mini ladders) with their
// shapes, parameters and MACs counted from the built model, as a table or JSON specs; `--time-batch` also times a
// training step (forward + backward) on random data.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "nfscale/cli/command_registry.h"
#include "nfscale/models/registry.h"

namespace nfscale::cli {
namespace {

struct ModelsOptions {
  std::string model;
  int64_t res = 0;
  int64_t classes = 0;
  int64_t in_channels = 0;
  bool json = false;
  int64_t time_batch = 0;
  int64_t time_steps = 5;
};

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// Mean seconds per training step (zero_grad, forward, cross-entropy, backward) at batch b, res r, over `steps`
// steps after 2 warm-up steps, on random data.
double time_step(const models::ModelInfo& spec, int64_t classes, int64_t in_ch, int64_t b, int64_t r,
                 int64_t steps) {
  models::ModelConfig cfg;
  cfg.name = spec.name;
  cfg.num_classes = classes;
  cfg.in_channels = in_ch;
  auto model = models::build_model(cfg);
  model->train();
  torch::manual_seed(0);
  auto x = torch::randn({b, in_ch, r, r});
  auto y = torch::randint(0, classes, {b});
  auto step = [&] {
    model->zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(x), y);
    loss.backward();
  };
  step();
  step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(steps);
}

void run(const ModelsOptions& o) {
  std::vector<std::string> names = o.model.empty() ? models::model_names() : std::vector<std::string>{o.model};
  for (const auto& n : names) models::model_info(n);  // validates --model (a name or a JSON spec)
  if (o.res != 0) models::check_resolution(names.front(), o.res);
  nlohmann::json out = nlohmann::json::array();
  if (!o.json) {
    std::printf("FLOP convention: MACs = multiply-accumulates of convs and linears (incl. squeeze-excite) and of\n"
                "attention's QK^T and AV, of one forward pass per image; training FLOPs/image = 3 (fwd+bwd) x 2 (FLOP/MAC)\n"
                "x MACs. Ladder rules: %s. Default small model: %s.\n\n",
                models::ladder_rule().c_str(), models::default_small_model().c_str());
    std::printf("%-14s %-16s %-20s %6s %6s %12s %10s %10s %12s%s\n", "model", "depths", "widths", "train", "test",
                "params", "GMACs@trn", "GMACs@tst", "trainGFLOP", o.time_batch > 0 ? "   step_ms   img/s" : "");
  }
  for (const auto& n : names) {
    const models::ModelInfo s = models::model_info(n);
    const nlohmann::json spec = models::family_of(n).spec_json(n);
    const int64_t classes = o.classes > 0 ? o.classes : s.ref_num_classes;
    const int64_t in_ch = o.in_channels > 0 ? o.in_channels : s.ref_in_channels;
    const int64_t train_res = o.res > 0 ? o.res : s.train_res;
    const int64_t test_res = o.res > 0 ? o.res : s.test_res;
    const auto train_cost = models::count_cost(n, train_res, in_ch, classes);
    const auto test_cost = models::count_cost(n, test_res, in_ch, classes);
    double step_s = 0.0;
    if (o.time_batch > 0) step_s = time_step(s, classes, in_ch, o.time_batch, train_res, o.time_steps);
    if (o.json) {
      // The member's full spec (readable back as --model '<json>'), then the counts.
      nlohmann::json j = spec;
      j.update(nlohmann::json{{"name", s.name},
                          {"is_default_small", n == models::default_small_model()},
                          {"num_classes", classes},
                          {"in_channels", in_ch},
                          {"params", train_cost.params},
                          {"train_res", train_res},
                          {"test_res", test_res},
                          {"macs_per_image_train_res", train_cost.macs_per_image},
                          {"macs_per_image_test_res", test_cost.macs_per_image},
                          {"train_flops_per_image", train_cost.train_flops_per_image()},
                          {"flop_convention", "train_flops = 3 (fwd+bwd) x 2 (FLOP/MAC) x forward MACs at train_res"},
                          {"dropout", s.dropout},
                          {"randaugment_layers", s.randaugment_layers},
                          {"randaugment_magnitude", s.randaugment_magnitude}});
      if (o.time_batch > 0) {
        j["step_seconds"] = step_s;
        j["step_batch"] = o.time_batch;
        j["train_images_per_second"] = static_cast<double>(o.time_batch) / step_s;
      }
      out.push_back(j);
    } else {
      // NFNets: stage depths and widths; ViTs: depth L and width D (with patch and MLP width).
      const bool staged = spec.contains("depths");
      const std::string depths = staged ? join(spec["depths"].get<std::vector<int64_t>>())
                                        : "L" + std::to_string(spec["depth"].get<int64_t>()) + " P" +
                                              std::to_string(spec["patch"].get<int64_t>());
      const std::string widths = staged ? join(spec["widths"].get<std::vector<int64_t>>())
                                        : "D" + std::to_string(spec["width"].get<int64_t>()) + " M" +
                                              std::to_string(spec["mlp_dim"].get<int64_t>()) + " H" +
                                              std::to_string(spec["heads"].get<int64_t>());
      std::printf("%-14s %-16s %-20s %6lld %6lld %12lld %10.4f %10.4f %12.4f", n.c_str(), depths.c_str(),
                  widths.c_str(), static_cast<long long>(train_res), static_cast<long long>(test_res),
                  static_cast<long long>(train_cost.params), train_cost.macs_per_image / 1e9,
                  test_cost.macs_per_image / 1e9, train_cost.train_flops_per_image() / 1e9);
      if (o.time_batch > 0) std::printf(" %9.1f %7.0f", step_s * 1e3, o.time_batch / step_s);
      std::printf("\n");
    }
  }
  if (o.json) std::cout << out.dump(2) << "\n";
}

const RegisterCommand kRegister_cmd_models(10, [](CLI::App& root) {
  auto opts = std::make_shared<ModelsOptions>();
  auto* cmd = root.add_subcommand(
      "models", "List the model families (NFNet, ViT) and ladders: shapes, parameters, MACs and training FLOPs per image");
  cmd->add_option("--model", opts->model,
                  "Only this model (e.g. F0, F7+, mini-F1, ViT-S-16, mini-ViT-S) or a JSON spec as printed by --json");
  cmd->add_option("--res", opts->res, "Count at this resolution instead of each model's train/test resolutions")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--classes", opts->classes,
                  "Number of classes (default: 1000 for the paper members, 10 for the ladders)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--in-channels", opts->in_channels,
                  "Input channels (default: 3 for the paper members, 1 for the ladders)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", opts->json, "Print JSON (exact integer parameter and MAC counts)");
  cmd->add_option("--time-batch", opts->time_batch,
                  "Also time a training step (forward+backward, random data) at this batch size and the train res")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--time-steps", opts->time_steps, "Timed steps after 2 warm-up steps")->check(CLI::PositiveNumber);
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace nfscale::cli
