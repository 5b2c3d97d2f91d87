// cmd_train.cpp - `nfscale train`: pre-train one model (or continue it with --resume).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/dist_flags.h"
#include "nfscale/cli/train_flags.h"
#include "nfscale/train/trainer.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_source.h"

namespace nfscale::cli {
namespace {

struct TrainArgs {
  train::TrainConfig config;
  std::string settings;
  bool resume = false;
  bool json = false;
  std::string from;  // initial weights (checkpoint, weights.pt or .safetensors)
  DistArgs dist;
};

// --from FILE: the initialisation. Unless --ws-form / --activation were given, the file decides them (its metadata,
// or timm's forms for timm-named files), so imported weights keep computing what they computed.
void apply_init_from(CLI::App& app, TrainArgs& a) {
  if (a.from.empty()) return;
  a.config.init_from = a.from;
  const weights::WeightSet set = weights::read_weights(a.from);
  weights::ModelSource src;
  src.model = a.config.model;
  if (app.get_option("--ws-form")->count() > 0) src.ws_form = a.config.ws_form;
  if (app.get_option("--activation")->count() > 0) src.activation = a.config.activation;
  const weights::BuiltModel b = weights::build_for_weights(set, src, "--from " + a.from);
  a.config.model = b.config.name;
  a.config.ws_form = b.config.ws_form;
  a.config.activation = b.config.activation;
}

std::string default_run_dir(const train::TrainConfig& c) {
  char buf[160];
  const std::string name = models::is_json_spec(c.model) ? "spec" : c.model;  // a JSON spec is no file name
  std::snprintf(buf, sizeof buf, "runs/%s-e%g-lr%g-s%llu", name.c_str(), c.epochs, c.lr,
                static_cast<unsigned long long>(c.seed));
  return buf;
}

RegisterCommand kRegister_cmd_train(20, [](CLI::App& root) {
  auto args = std::make_shared<TrainArgs>();
  auto* app = root.add_subcommand(
      "train",
      "Pre-train a model: SGD (Nesterov) + AGC, cosine schedule over a fractional epoch budget, label smoothing, EMA,\n"
      "bf16 autocast, gradient accumulation, atomic checkpoints (interval, SIGINT/SIGTERM) with bit-exact --resume.\n"
      "Writes <run-dir>/config.json, checkpoint.pt, metrics.jsonl, weights.pt, result.json.");
  add_train_flags(*app, args->config);
  app->add_option("--config", args->settings, "Settings file (.toml or .json) with the same keys as config.json; "
                                              "flags given on the command line override it")
      ->check(CLI::ExistingFile);
  app->add_flag("--resume", args->resume, "Continue from <run-dir>/checkpoint.pt if it exists (its config wins)");
  app->add_flag("--json", args->json, "Print the result as JSON on stdout");
  app->add_option("--from", args->from, "Initialise from a weights file (checkpoint, weights.pt, .safetensors in "
                                        "nfscale or timm names; the classifier starts fresh). --model defaults to the "
                                        "file's; its WS form and activation are kept unless given")
      ->group("Model");
  add_dist_flags(*app, args->dist);
  app->callback([app, args] {
    if (!args->settings.empty()) apply_settings_file(*app, args->settings, args->config);
    apply_init_from(*app, *args);
    if (args->config.run_dir.empty()) args->config.run_dir = default_run_dir(args->config);
    train::TrainResult r;
    args->dist.device = args->config.device;
    const bool report = run_ranks(args->dist, [&](const train::TrainHooks& hooks) {
      r = train::run_training(args->config, args->resume, hooks);
    });
    if (!report && r.interrupted) throw CLI::RuntimeError(130);
    if (!report) return;
    if (args->json) {
      std::printf("%s\n", train::to_json(r).dump(2).c_str());
    } else {
      std::fprintf(stderr, "\n[train] %s after %lld steps, %.1f s, %.3g training FLOPs; run dir %s\n",
                   r.completed ? "done" : "stopped", (long long)r.steps, r.seconds, r.train_flops,
                   args->config.run_dir.c_str());
    }
    if (r.interrupted) throw CLI::RuntimeError(130);
  });
});

}  // namespace
}  // namespace nfscale::cli
