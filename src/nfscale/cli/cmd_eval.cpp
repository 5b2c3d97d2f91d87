// cmd_eval.cpp - `nfscale eval`: held-out or test cross-entropy, top-1 and top-5 error of a trained model.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "nfscale/cli/command_registry.h"
#include "nfscale/models/registry.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/data_setup.h"
#include "nfscale/train/evaluate.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/atomic_file.h"
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
};

RegisterCommand reg(25, [](CLI::App& root) {
  auto a = std::make_shared<EvalArgs>();
  auto* app = root.add_subcommand(
      "eval",
      "Evaluate a trained model: cross-entropy, top-1 and top-5 error on the test set or the held-out split, at any\n"
      "resolution (train and eval resolutions may differ). Reads <run-dir>/config.json for the model and data.");
  app->add_option("--run-dir", a->run_dir, "Run directory written by `nfscale train` / `finetune`")->required();
  app->add_option("--weights", a->weights, "Weights file (default: <run-dir>/weights.pt, or checkpoint.pt)");
  app->add_flag("--ema", a->ema, "Use <run-dir>/weights_ema.pt (the EMA weights)");
  app->add_option("--split", a->split, "test or holdout")->capture_default_str()->check(CLI::IsMember({"test", "holdout"}));
  app->add_option("--data", a->data, "Evaluate on this data spec instead of the run's (its test split)");
  app->add_option("--res", a->res, "Evaluation resolution (default: the run's eval resolution)");
  app->add_option("--batch", a->batch, "Evaluation batch size")->capture_default_str();
  app->add_option("--precision", a->precision, "fp32 or bf16")->capture_default_str()->check(CLI::IsMember({"fp32", "bf16"}));
  app->add_flag("--json", a->json, "Print JSON");
  app->callback([a] {
    const std::string cfg_path = (fs::path(a->run_dir) / "config.json").string();
    require(fs::exists(cfg_path), cfg_path + " not found: --run-dir must be a directory written by `nfscale train`");
    train::TrainConfig cfg = train::config_from_json(nlohmann::json::parse(read_file(cfg_path)), cfg_path);
    if (!a->data.empty()) {
      cfg.data = a->data;
      cfg.test_data.clear();
    }
    std::string weights = a->weights;
    if (weights.empty()) {
      weights = (fs::path(a->run_dir) / (a->ema ? "weights_ema.pt" : "weights.pt")).string();
      if (!fs::exists(weights) && !a->ema) weights = (fs::path(a->run_dir) / "checkpoint.pt").string();
    }
    require(fs::exists(weights), weights + " not found: the run has not finished or saved weights yet");
    train::RunData data = train::setup_data(cfg);
    models::ModelConfig mc;
    mc.name = cfg.model;
    mc.num_classes = data.num_classes;
    mc.in_channels = data.channels;
    mc.activation = cfg.activation;
    mc.resolution = cfg.resolution;  // a ViT's position-embedding grid, as trained
    mc.pos_embed_resample = cfg.pos_embed_resample;
    mc.init_weights = false;
    auto model = models::build_model(mc);
    train::load_weights(weights, *model);
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
    train::EvalResult r = train::evaluate(*model, ds, idx, eo);
    if (a->json) {
      nlohmann::json j = train::to_json(r);
      j["split"] = a->split;
      j["resolution"] = eo.resolution;
      j["weights"] = weights;
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("%s %s at %lld px: loss %.4f  top-1 error %.2f%%  top-5 error %.2f%%  (%lld images)\n",
                  cfg.model.c_str(), a->split.c_str(), (long long)eo.resolution, r.loss, 100 * r.top1_err,
                  100 * r.top5_err, (long long)r.examples);
    }
  });
});

}  // namespace
}  // namespace nfscale::cli
