// model_loading.h - the `--from (RUN_DIR | FILE) [--model NAME | --model-json SPEC]` flags shared by eval, predict and
// export, and loading the model they name onto a device (run dir: its config.json and weights; file: a checkpoint,
// weights.pt or .safetensors in nfscale or timm names).
#pragma once
#include <cstdint>
#include <string>

#include "nfscale/models/classifier.h"
#include "nfscale/models/registry.h"

namespace CLI {
class App;
}

namespace nfscale::cli {

struct FromArgs {
  std::string from;        // run dir or weights file
  std::string model;       // --model NAME
  std::string model_json;  // --model-json SPEC.json
  std::string names = "auto";
  bool strict = true;
  bool ema = false;        // run dir: weights_ema.pt
  std::string ws_form;     // "" = the run's / file's / convention's
  std::string activation;  // "" = the run's / file's / convention's
  std::string device = "cpu";
};

// Adds --model, --model-json, --names, --strict, --ema, --ws-form, --activation and --device (not --from: each
// command words it itself).
void add_model_source_flags(CLI::App& app, FromArgs& args);

struct LoadedModel {
  models::Classifier model;     // in eval mode, on the requested device
  models::ModelInfo info;       // of config.name (a registry name or spec JSON text)
  models::ModelConfig config;
  std::string weights_path;     // the file the weights came from
  std::string convention;       // of the file's names
  std::string data_kind;        // the run's data kind (normalisation), "" for a bare file
  int64_t eval_resolution = 0;  // the run's eval resolution, else the spec's test resolution
};

// The weights file of a run dir: weights.pt (weights_ema.pt with `ema`), else checkpoint.pt for an unfinished run.
// UserError naming the file when there is none.
std::string run_weights_path(const std::string& run_dir, bool ema);

// Loads the model `args` names. UserError naming the path for a missing run dir / file, a run that saved no
// weights, or weights that do not fit (one error listing every tensor).
LoadedModel load_model(const FromArgs& args);

}  // namespace nfscale::cli
