// cmd_eval.cpp - `nfscale eval`: held-out or test cross-entropy, top-1 and top-5 error of a trained model.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/model_loading.h"
#include "nfscale/models/registry.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/data_setup.h"
#include "nfscale/train/evaluate.h"
#include "nfscale/train/recipe.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {
namespace {
namespace fs = std::filesystem;

struct EvalArgs {
  std::string run_dir;
  std::string weights;
  std::string split = "test";
  std::string data;
  int64_t res = 0;
  int64_t batch = 256;
  bool ema = false;
  std::string precision = "fp32";
  bool json = false;
  FromArgs from;  // --from FILE (a weights file instead of a run dir)
};

void print_result(const EvalArgs& a, const std::string& model, const std::string& weights, int64_t res,
                  const train::EvalResult& r) {
  if (a.json) {
    nlohmann::json j = train::to_json(r);
    j["split"] = a.split;
    j["resolution"] = res;
    j["weights"] = weights;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s %s at %lld px: loss %.4f  top-1 error %.2f%%  top-5 error %.2f%%  (%lld images)\n", model.c_str(),
                a.split.c_str(), (long long)res, r.loss, 100 * r.top1_err, 100 * r.top5_err, (long long)r.examples);
  }
}

// eval --from FILE: the model from the weights file, the data from --data (its test split; the model's channels).
void eval_file(EvalArgs& a) {
  require(!a.data.empty(), "eval --from " + a.from.from + ": a weights file names no data; pass --data (e.g. digits)");
  require(a.split == "test", "eval --from FILE evaluates the --data's test split; --split holdout needs a run dir");
  LoadedModel m = load_model(a.from);
  train::TrainConfig cfg;
  cfg.model = m.config.name;
  cfg.data = a.data;
  cfg.channels = m.model->in_channels();
  cfg.resolution = a.res > 0 ? a.res : m.eval_resolution;
  train::RunData data = train::setup_data(cfg);
  require(data.test_set != nullptr, "--data " + a.data + " has no test split; pass a data spec that has one");
  require(data.num_classes <= m.model->num_classes(),
          "--data " + a.data + " has " + std::to_string(data.num_classes) + " classes but the model's classifier has " +
              std::to_string(m.model->num_classes()) + "; fine-tune it first (`nfscale finetune --from`)");
  train::EvalOptions eo = train::make_eval_options(cfg, data, a.precision == "bf16");
  eo.batch = a.batch;
  print_result(a, m.info.name, m.weights_path, eo.resolution, train::evaluate(*m.model, data.test_set, data.test_indices, eo));
}

RegisterCommand kRegister_cmd_eval(25, [](CLI::App& root) {
  auto a = std::make_shared<EvalArgs>();
  auto* app = root.add_subcommand(
      "eval",
      "Evaluate a trained model: cross-entropy, top-1 and top-5 error on the test set or the held-out split, at any\n"
      "resolution (train and eval resolutions may differ). Reads <run-dir>/config.json for the model and data; or\n"
      "evaluates a weights file (--from FILE.safetensors with --model/--model-json and --data).");
  auto* run_dir = app->add_option("--run-dir", a->run_dir, "Run directory written by `nfscale train` / `finetune`");
  auto* from = app->add_option("--from", a->from.from, "A weights file (checkpoint, weights.pt, .safetensors in nfscale "
                                                       "or timm names) instead of a run dir; needs --data");
  run_dir->excludes(from);
  auto* model = app->add_option("--model", a->from.model, "Architecture of the --from file (default: its metadata)");
  auto* model_json = app->add_option("--model-json", a->from.model_json,
                                     "Architecture of the --from file as a spec JSON file (`nfscale models --model NAME "
                                     "--json > spec.json`)")
                         ->check(CLI::ExistingFile);
  model->excludes(model_json);
  app->add_option("--strict", a->from.strict, "--from: every tensor must match")->capture_default_str();
  app->add_option("--device", a->from.device, "cpu or cuda[:N]")->capture_default_str();
  app->add_option("--weights", a->weights, "Weights file (default: <run-dir>/weights.pt, or checkpoint.pt)");
  app->add_flag("--ema", a->ema, "Use <run-dir>/weights_ema.pt (the EMA weights)");
  app->add_option("--split", a->split, "test or holdout")->capture_default_str()->check(CLI::IsMember({"test", "holdout"}));
  app->add_option("--data", a->data, "Evaluate on this data spec instead of the run's (its test split)");
  app->add_option("--res", a->res, "Evaluation resolution (default: the run's eval resolution)");
  app->add_option("--batch", a->batch, "Evaluation batch size")->capture_default_str();
  app->add_option("--precision", a->precision, "fp32 or bf16")->capture_default_str()->check(CLI::IsMember({"fp32", "bf16"}));
  app->add_flag("--json", a->json, "Print JSON");
  app->callback([a] {
    const torch::Device device = parse_device(a->from.device, "--device");  // a named error before any work
    if (!a->from.from.empty()) return eval_file(*a);
    require(!a->run_dir.empty(), "eval: pass --run-dir (a run of `nfscale train`) or --from FILE with --data");
    const std::string cfg_path = (fs::path(a->run_dir) / "config.json").string();
    require(fs::exists(cfg_path), cfg_path + " not found: --run-dir must be a directory written by `nfscale train`");
    train::TrainConfig cfg = train::config_from_json(nlohmann::json::parse(read_file(cfg_path)), cfg_path);
    if (!a->data.empty()) {
      cfg.data = a->data;
      cfg.test_data.clear();
    }
    const std::string weights = a->weights.empty() ? run_weights_path(a->run_dir, a->ema) : a->weights;
    require(fs::exists(weights), weights + " not found: check --weights");
    cfg.dedup = "off";  // evaluation uses the hold-out and test indices only: no need to recompute the removal
    train::RunData data = train::setup_data(cfg);
    models::ModelConfig mc = train::model_config(cfg, data.num_classes, data.channels);  // a ViT's grid as trained
    mc.init_weights = false;
    auto model = models::build_model(mc);
    train::load_weights(weights, *model);
    model->to(device);
    train::EvalOptions eo = train::make_eval_options(cfg, data, a->precision == "bf16");
    if (a->res > 0) eo.resolution = a->res;
    models::check_resolution(cfg.model, eo.resolution);
    eo.batch = a->batch;
    std::shared_ptr<data::Dataset> ds = data.test_set;
    std::vector<int64_t> idx = data.test_indices;
    if (a->split == "holdout") {
      require(!data.holdout_indices.empty(), "the run has no held-out split (holdout=0 in " + cfg_path + ")");
      ds = data.train_set;
      idx = data.holdout_indices;
    }
    require(ds != nullptr, "the run's data '" + cfg.data + "' has no test split; pass --data or --split holdout");
    print_result(*a, cfg.model, weights, eo.resolution, train::evaluate(*model, ds, idx, eo));
  });
});

}  // namespace
}  // namespace nfscale::cli
