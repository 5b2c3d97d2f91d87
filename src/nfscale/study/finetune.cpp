// finetune.cpp - source resolution, fine-tuning defaults, compute accounting and the run wrapper (see finetune.h).
#include "nfscale/study/finetune.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "nfscale/dist/communicator.h"
#include <torch/torch.h>

#include "nfscale/models/registry.h"
#include "nfscale/optim/schedule.h"
#include "nfscale/train/data_setup.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"
#include "nfscale/weights/model_source.h"
#include "nfscale/util/json_number.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Reads the weights file (torch archive or safetensors, nfscale or timm names), builds the model it is for (`model`,
// else the file's metadata) and imports it non-strictly into that probe, so a wrong --model fails here with every
// mismatching tensor named rather than half-way into a load. Fills the source's model, channels, WS form and (when
// the file says) activation.
void check_stored_weights(const std::string& path, PretrainedSource& s) {
  const weights::WeightSet set = weights::read_weights(path);
  weights::ModelSource ms;
  ms.model = s.model;
  const weights::BuiltModel b = weights::build_for_weights(set, ms, "--from " + path);
  weights::ImportOptions lax;
  lax.strict = false;  // the classifier is replaced anyway
  weights::import_weights(*b.model, set, lax, "--from " + path);
  s.model = b.config.name;
  s.in_channels = b.config.in_channels;
  if (s.ws_form.empty()) s.ws_form = b.config.ws_form;
  if (s.activation.empty() && (set.metadata.count("activation") || b.convention != "nfscale"))
    s.activation = b.config.activation;
}

}  // namespace

train::TrainConfig finetune_defaults() {
  train::TrainConfig c;
  c.data = "digits";
  c.epochs = 5.0;
  c.batch = 64;
  c.lr = 0.4;     // base LR at batch 256: 0.1 absolute at batch 64, half the pre-training 0.2 (0.4 at 128)
  c.flip = false; // digits are not flip-invariant; pass --flip true for natural images
  c.warmup_epochs = 0.5;
  c.ema_decay = 0.0;
  c.sam_rho = 0.05;
  c.stochastic_depth = 0.1;
  c.dropout = -1.0;
  c.activation = "";  // inherit from the pre-training run (gelu when unknown)
  return c;
}

PretrainedSource resolve_source(const std::string& from, const std::string& model) {
  PretrainedSource s;
  s.model = model;
  require(!from.empty(), "--from is empty: pass a pre-training run dir, checkpoint.pt or weights.pt");
  require(fs::exists(from), "--from " + from + ": no such file or directory");
  if (fs::is_directory(from)) {
    const fs::path dir(from);
    const fs::path config_path = dir / "config.json";
    require(fs::exists(config_path), "--from " + from + ": directory has no config.json, so it is not an nfscale run "
                                     "dir; pass the run dir written by `nfscale train`, or a weights file with --model");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(config_path.string()));
    } catch (const nlohmann::json::parse_error& e) {
      throw UserError(config_path.string() + ": JSON error: " + e.what());
    }
    const train::TrainConfig stored = train::config_from_json(j, config_path.string());
    require(model.empty() || model == stored.model,
            "--model " + model + " disagrees with " + config_path.string() + " (model " + stored.model +
                "); drop --model to use the run's model");
    s.model = stored.model;
    s.activation = stored.activation;
    s.ws_form = stored.ws_form;
    if (fs::exists(dir / "weights.pt")) {
      s.weights_path = (dir / "weights.pt").string();
    } else {
      throw UserError("--from " + from + ": has no weights.pt, so its pre-training has not finished" +
                      std::string(fs::exists(dir / "checkpoint.pt")
                                      ? "; finish it with `nfscale train --resume --run-dir " + from +
                                            "`, or pass " + (dir / "checkpoint.pt").string() + " to start from it"
                                      : ""));
    }
  } else {
    s.weights_path = from;  // --model, or the model named in the file's metadata (safetensors from `nfscale export`)
  }
  if (!s.model.empty()) models::model_info(s.model);  // UserError listing valid names
  check_stored_weights(s.weights_path, s);
  return s;
}

namespace {
train::TrainConfig resolve(const FinetuneRequest& r, PretrainedSource& src) {
  train::TrainConfig c = r.config;
  if (!r.from.empty()) {
    src = resolve_source(r.from, c.model);
  } else {
    require(r.scratch, "finetune: --from is empty: pass a pre-training run dir, checkpoint.pt or weights.pt "
                       "(or --scratch with --model for the from-scratch baseline)");
    require(!c.model.empty(), "finetune --scratch without --from: pass --model");
  }
  if (!src.model.empty()) c.model = src.model;
  if (c.activation.empty()) c.activation = src.activation.empty() ? "gelu" : src.activation;
  require(src.activation.empty() || c.activation == src.activation,
          "--activation " + c.activation + " disagrees with the pre-training run " + r.from + " (" + src.activation +
              "); the weights only make sense with the activation they were trained with - drop --activation");
  if (src.in_channels > 0) c.channels = src.in_channels;
  if (!src.ws_form.empty()) c.ws_form = src.ws_form;
  c.init_from = r.scratch ? "" : src.weights_path;
  c.validate();
  models::check_resolution(c.model, c.resolution);
  models::check_resolution(c.model, c.eval_res());
  src.model = c.model;
  if (r.scratch) src.weights_path.clear();
  return c;
}
}  // namespace

train::TrainConfig resolve_finetune_config(const FinetuneRequest& r) {
  PretrainedSource src;
  return resolve(r, src);
}

FinetuneCompute finetune_compute(const FinetuneRequest& r) {
  const train::TrainConfig c = resolve_finetune_config(r);
  const train::RunData data = train::setup_data(c);
  FinetuneCompute out;
  out.train_examples = static_cast<int64_t>(data.train_indices.size());
  require(out.train_examples > 0, "--data " + c.data + ": no training examples left after --holdout");
  out.steps = optim::steps_for_budget(c.epochs, out.train_examples, c.batch);
  out.examples = out.steps * c.batch;
  out.macs_per_image = models::count_cost(c.model, c.resolution, data.channels, data.num_classes).macs_per_image;
  out.passes = c.sam_rho > 0 ? 2 : 1;
  out.flops = 6.0 * double(out.macs_per_image) * double(out.examples) * out.passes;
  out.distinct_epochs = double(out.examples) / double(c.multiplicity * out.train_examples);
  return out;
}

FinetuneResult finetune(const FinetuneRequest& r, const train::TrainHooks& hooks) {
  FinetuneResult out;
  const train::TrainConfig c = resolve(r, out.source);
  out.scratch = r.scratch;
  out.train = train::run_training(c, r.resume, hooks);
  out.completed = out.train.completed;
  out.steps = out.train.steps;
  out.seconds = out.train.seconds;
  out.flops = out.train.train_flops;  // the trainer counts both SAM passes
  const train::EvalPoint& e = out.train.final_eval;
  out.test_top1_err = e.has_test ? e.test.top1_err : kNaN;
  out.test_loss = e.has_test ? e.test.loss : kNaN;
  out.holdout_top1_err = e.has_holdout ? e.holdout.top1_err : kNaN;
  out.holdout_loss = e.has_holdout ? e.holdout.loss : kNaN;
  if (out.completed && (!hooks.comm || hooks.comm->rank() == 0))  // data parallelism: rank 0 writes the run dir
    write_file_atomic((fs::path(c.run_dir) / "finetune.json").string(), to_json(out).dump(2) + "\n");
  return out;
}

nlohmann::json to_json(const FinetuneCompute& c) {
  return {{"train_examples", c.train_examples}, {"steps", c.steps},   {"examples", c.examples},
          {"macs_per_image", c.macs_per_image}, {"passes", c.passes}, {"flops", c.flops},
          {"distinct_epochs", c.distinct_epochs}};
}

nlohmann::json to_json(const FinetuneResult& r) {
  return {{"model", r.source.model},
          {"weights_from", r.source.weights_path},
          {"in_channels", r.source.in_channels},
          {"scratch", r.scratch},
          {"completed", r.completed},
          {"steps", r.steps},
          {"seconds", r.seconds},
          {"finetune_flops", r.flops},
          {"test_top1_err", finite_or_null(r.test_top1_err)},
          {"test_loss", finite_or_null(r.test_loss)},
          {"holdout_top1_err", finite_or_null(r.holdout_top1_err)},
          {"holdout_loss", finite_or_null(r.holdout_loss)},
          {"train", train::to_json(r.train)}};
}

}  // namespace nfscale::study
