// model_loading.cpp - loading the model named by --from / --model / --model-json (see model_loading.h).
#include "nfscale/cli/model_loading.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "nfscale/data/dataset.h"
#include "nfscale/train/config.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"
#include "nfscale/weights/model_source.h"

namespace nfscale::cli {
namespace fs = std::filesystem;

void add_model_source_flags(CLI::App& app, FromArgs& a) {
  auto* model = app.add_option("--model", a.model, "Architecture of a weights file: a registry name (see `nfscale "
                                                  "models`); default: the file's metadata");
  auto* model_json = app.add_option("--model-json", a.model_json,
                                    "Architecture of a weights file as a spec JSON file: what `nfscale models --model "
                                    "NAME --json > spec.json` writes (edit any field to describe another shape)")
                         ->check(CLI::ExistingFile);
  model->excludes(model_json);
  app.add_option("--names", a.names, "Tensor names in the file: auto (detected), nfscale or timm")
      ->capture_default_str()->check(CLI::IsMember({"auto", "nfscale", "timm"}));
  app.add_option("--strict", a.strict, "Every tensor must match (false: a classifier of another size is left as "
                                       "built, extra tensors are ignored)")
      ->capture_default_str();
  app.add_flag("--ema", a.ema, "Run dir: use its EMA weights (weights_ema.pt)");
  app.add_option("--ws-form", a.ws_form, "Weight standardisation: deepmind or timm (default: the run's, the file's, "
                                         "or timm for timm-named files)")
      ->check(CLI::IsMember({"deepmind", "timm"}));
  app.add_option("--activation", a.activation, "Activation override (default: the run's / file's; gelu_erf for "
                                               "timm-named files)");
  app.add_option("--device", a.device, "cpu or cuda[:N] (default cpu)")->capture_default_str();
}

std::string run_weights_path(const std::string& run_dir, bool ema) {
  const fs::path dir(run_dir);
  std::string path = (dir / (ema ? "weights_ema.pt" : "weights.pt")).string();
  if (!fs::exists(path) && !ema) path = (dir / "checkpoint.pt").string();
  require(fs::exists(path), path + " not found: the run has not finished or saved " +
                                std::string(ema ? "EMA weights (was --ema-decay 0?)" : "weights yet"));
  return path;
}

LoadedModel load_model(const FromArgs& a) {
  require(!a.from.empty(), "--from is empty: pass a run dir of `nfscale train` or a weights file");
  require(fs::exists(a.from), "--from " + a.from + ": no such file or directory");
  const torch::Device device = parse_device(a.device, "--device");
  LoadedModel out;
  weights::ModelSource src;
  src.model = a.model;
  src.model_json = a.model_json;
  src.names = a.names;
  src.ws_form = a.ws_form;
  src.activation = a.activation;
  if (fs::is_directory(a.from)) {
    const std::string cfg_path = (fs::path(a.from) / "config.json").string();
    require(fs::exists(cfg_path), "--from " + a.from + ": directory has no config.json, so it is not an nfscale run "
                                  "dir; pass the run dir written by `nfscale train`, or a weights file");
    require(a.model.empty() && a.model_json.empty(),
            "--model/--model-json describe a weights file; --from " + a.from + " is a run dir whose config.json names "
            "the model: drop them");
    const train::TrainConfig cfg = train::config_from_json(nlohmann::json::parse(read_file(cfg_path)), cfg_path);
    out.weights_path = run_weights_path(a.from, a.ema);
    src.model = cfg.model;
    if (src.ws_form.empty()) src.ws_form = cfg.ws_form;
    if (src.activation.empty()) src.activation = cfg.activation;
    src.resolution = cfg.resolution;  // a ViT's position-embedding grid, as trained
    src.pos_embed_resample = cfg.pos_embed_resample;
    out.data_kind = data::parse_data_spec(cfg.data, cfg_path + " data").kind;
    out.eval_resolution = cfg.eval_res();
  } else {
    require(!a.ema, "--ema picks weights_ema.pt of a run dir; --from " + a.from + " is a file: drop --ema");
    out.weights_path = a.from;
  }
  const weights::WeightSet set = weights::read_weights(out.weights_path);
  weights::BuiltModel b = weights::build_for_weights(set, src, out.weights_path);
  weights::ImportOptions io;
  io.names = b.convention;
  io.strict = a.strict;
  weights::import_weights(*b.model, set, io, out.weights_path);
  out.model = b.model;
  out.info = b.info;
  out.config = b.config;
  out.convention = b.convention;
  if (out.eval_resolution == 0) out.eval_resolution = out.info.test_res;
  if (out.data_kind.empty()) {
    auto it = set.metadata.find("data");
    if (it != set.metadata.end()) out.data_kind = it->second;
  }
  out.model->to(device);
  out.model->eval();
  return out;
}

}  // namespace nfscale::cli
