// cmd_finetune.cpp - `nfscale finetune`: fine-tune a pre-trained model on a target data set (SAM, stochastic depth,
// dropout, separate train/eval resolutions, repeated augmentation), or train the from-scratch baseline (--scratch).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/dist_flags.h"
#include "nfscale/cli/train_flags.h"
#include "nfscale/data/dataset.h"
#include "nfscale/models/family.h"
#include "nfscale/study/finetune.h"

namespace nfscale::cli {
namespace {

struct FinetuneArgs {
  study::FinetuneRequest request;
  std::string settings;
  bool json = false;
  bool compute_only = false;
  DistArgs dist;
};

std::string default_run_dir(const train::TrainConfig& c, bool scratch) {
  const std::string kind = data::parse_data_spec(c.data, "--data").kind;
  const std::string name = models::is_json_spec(c.model) ? "spec" : c.model;  // a JSON spec is no file name
  char buf[200];
  std::snprintf(buf, sizeof buf, "runs/ft-%s-%s%s-s%llu", name.c_str(), kind.c_str(), scratch ? "-scratch" : "",
                static_cast<unsigned long long>(c.seed));
  return buf;
}

RegisterCommand kRegister_cmd_finetune(30, [](CLI::App& root) {
  auto args = std::make_shared<FinetuneArgs>();
  auto* app = root.add_subcommand(
      "finetune",
      "Fine-tune a pre-trained model on a target data set: the classifier is replaced (N(0,0.01^2), bias 0) for the\n"
      "target's classes and the whole network is trained with SAM on SGD+Nesterov (+AGC unless --clip 0).\n"
      "Defaults differ from `train`: --data digits, --epochs 5, --batch 64, --lr 0.4, --flip false, --warmup-epochs 0.5,\n"
      "--sam-rho 0.05, --stochastic-depth 0.1, --ema-decay 0; model, activation and input channels come from the\n"
      "pre-trained source (target images are converted to its channels). See docs/finetuning.md.");
  add_train_flags(*app, args->request.config);  // bound to finetune_defaults() (FinetuneRequest's default)
  app->add_option("--from", args->request.from,
                  "Pre-trained source: a run dir of `nfscale train` (model from its config.json, weights.pt), or a "
                  "checkpoint.pt / weights.pt / .safetensors file in nfscale or timm names (--model or --model-json, "
                  "unless the file's metadata names the model)")
      ->group("Fine-tuning");
  app->add_flag("--scratch", args->request.scratch,
                "Baseline: same model and settings, random initialisation (model/channels still taken from --from "
                "when given)")
      ->group("Fine-tuning");
  app->add_flag("--compute", args->compute_only,
                "Print the fine-tuning compute (steps, examples, FLOPs incl. SAM's second pass) as JSON and exit")
      ->group("Fine-tuning");
  app->add_option("--config", args->settings, "Settings file (.toml or .json) with the keys of config.json; "
                                              "flags given on the command line override it")
      ->check(CLI::ExistingFile);
  app->add_flag("--resume", args->request.resume, "Continue from <run-dir>/checkpoint.pt if it exists");
  app->add_flag("--json", args->json, "Print the result as JSON on stdout");
  add_dist_flags(*app, args->dist);
  app->callback([app, args] {
    study::FinetuneRequest& req = args->request;
    if (!args->settings.empty()) apply_settings_file(*app, args->settings, req.config);
    if (req.config.run_dir.empty()) {
      // Resolve first so the default name carries the model taken from the source.
      train::TrainConfig probe = req.config;
      probe.run_dir = "-";
      study::FinetuneRequest tmp = req;
      tmp.config = probe;
      req.config.run_dir = default_run_dir(study::resolve_finetune_config(tmp), req.scratch);
    }
    if (args->compute_only) {
      std::printf("%s\n", study::to_json(study::finetune_compute(req)).dump(2).c_str());
      return;
    }
    study::FinetuneResult r;
    args->dist.device = req.config.device;
    const bool report = run_ranks(args->dist, [&](const train::TrainHooks& hooks) {
      r = study::finetune(req, hooks);
    });
    if (!report && r.train.interrupted) throw CLI::RuntimeError(130);
    if (!report) return;
    if (args->json) {
      std::printf("%s\n", study::to_json(r).dump(2).c_str());
    } else {
      std::fprintf(stderr,
                   "\n[finetune] %s %s: %lld steps, %.1f s, %.3g fine-tuning FLOPs; test top-1 error %.2f%% "
                   "(loss %.4f); run dir %s\n",
                   r.completed ? "done" : "stopped", r.scratch ? "(from scratch)" : r.source.weights_path.c_str(),
                   (long long)r.steps, r.seconds, r.flops, 100 * r.test_top1_err, r.test_loss,
                   req.config.run_dir.c_str());
    }
    if (r.train.interrupted) throw CLI::RuntimeError(130);
  });
});

}  // namespace
}  // namespace nfscale::cli
