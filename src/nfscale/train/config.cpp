// config.cpp - validation and JSON (de)serialisation of TrainConfig.
#include "nfscale/train/config.h"

#include <nlohmann/json.hpp>

#include "nfscale/util/error.h"

namespace nfscale::train {

// One list of fields drives both directions of the JSON mapping.
#define NFSCALE_TRAIN_FIELDS(X)                                                                          \
  X(model) X(data) X(test_data) X(holdout) X(train_examples) X(eval_ema) X(resolution) X(eval_resolution) X(channels) X(epochs) X(batch) \
  X(micro_batch) X(optimizer) X(lr) X(absolute_lr) X(warmup_epochs) X(momentum) X(nesterov) X(weight_decay) X(clip) X(beta1) X(beta2) X(adam_eps) X(decay_convention) X(pos_embed_resample) \
  X(label_smoothing) X(ema_decay) X(stochastic_depth) X(dropout) X(activation) X(ws_form) X(precision)                \
  X(channels_last) X(device) X(sam_rho) X(sam_adaptive) X(augment) X(crop_min_area) X(flip) X(randaugment_layers)    \
  X(randaugment_magnitude) X(mixup) X(cutmix) X(multiplicity) X(seed) X(loader_threads) X(eval_every)      \
  X(eval_points) X(checkpoint_seconds) X(checkpoint_steps) X(log_every) X(run_dir) X(init_from) X(quiet) \
  X(dedup)

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j;
#define X(f) j[#f] = c.f;
  NFSCALE_TRAIN_FIELDS(X)
#undef X
  return j;
}

TrainConfig config_from_json(const nlohmann::json& j, const std::string& origin) {
  require(j.is_object(), origin + ": expected a JSON object of training settings");
  TrainConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    bool known = false;
    try {
#define X(f)                          \
  if (key == #f) {                    \
    it.value().get_to(c.f);           \
    known = true;                     \
  }
      NFSCALE_TRAIN_FIELDS(X)
#undef X
    } catch (const nlohmann::json::exception& e) {
      throw UserError(origin + ": field '" + key + "' has the wrong type (" + e.what() + ")");
    }
    require(known, origin + ": unknown field '" + key + "' (see `nfscale train --help` for the settings)");
  }
  return c;
}

void TrainConfig::validate() const {
  auto field = [](const std::string& name, const std::string& problem) {
    return "training setting '" + name + "' " + problem;
  };
  require(!model.empty(), field("model", "is empty: pass --model (see `nfscale models`)"));
  require(resolution > 0, field("resolution", "must be positive"));
  require(eval_resolution >= 0, field("eval_resolution", "must be >= 0 (0 = train resolution)"));
  require(epochs > 0, field("epochs", "must be > 0 (fractional budgets like 0.25 are fine)"));
  require(batch > 0, field("batch", "must be positive"));
  require(micro_batch >= 0, field("micro_batch", "must be >= 0"));
  require(batch % micro() == 0, field("micro_batch", "must divide batch (" + std::to_string(batch) + ")"));
  require(multiplicity >= 1, field("multiplicity", "must be >= 1"));
  require(micro() % multiplicity == 0,
          field("multiplicity", "must divide the micro-batch (" + std::to_string(micro()) + ")"));
  require(lr >= 0, field("lr", "must be > 0 (or 0 for the model family's default)"));
  require(optimizer == "auto" || optimizer == "sgd_agc" || optimizer == "adamw",
          field("optimizer", "must be one of auto, sgd_agc, adamw"));
  require(beta1 >= 0 && beta1 < 1, field("beta1", "must be in [0, 1)"));
  require(beta2 >= 0 && beta2 < 1, field("beta2", "must be in [0, 1)"));
  require(adam_eps > 0, field("adam_eps", "must be > 0"));
  require(decay_convention == "big_vision" || decay_convention == "torch",
          field("decay_convention", "must be big_vision or torch"));
  require(pos_embed_resample == "bilinear" || pos_embed_resample == "bicubic",
          field("pos_embed_resample", "must be bilinear or bicubic"));
  require(warmup_epochs >= 0, field("warmup_epochs", "must be >= 0"));
  require(momentum >= 0 && momentum < 1, field("momentum", "must be in [0, 1)"));
  require(label_smoothing >= 0 && label_smoothing < 1, field("label_smoothing", "must be in [0, 1)"));
  require(ema_decay < 1, field("ema_decay", "must be < 1 (<= 0 disables the EMA)"));
  require(stochastic_depth >= 0 && stochastic_depth < 1, field("stochastic_depth", "must be in [0, 1)"));
  require(dropout == -1.0 || (dropout >= 0 && dropout < 1), field("dropout", "must be in [0, 1) or -1 (default)"));
  require(precision == "auto" || precision == "fp32" || precision == "bf16",
          field("precision", "must be one of auto, fp32, bf16"));
  require(sam_rho >= 0, field("sam_rho", "must be >= 0"));
  require(crop_min_area > 0 && crop_min_area <= 1, field("crop_min_area", "must be in (0, 1]"));
  require(holdout >= 0, field("holdout", "must be >= 0"));
  require(train_examples >= 0, field("train_examples", "must be >= 0 (0 = all)"));
  require(loader_threads >= 1, field("loader_threads", "must be >= 1"));
  require(!run_dir.empty(), field("run_dir", "is empty: pass --run-dir"));
  require(dedup == "off" || dedup == "on",
          field("dedup", "is '" + dedup + "': must be off or on (--dedup on removes confirmed near-duplicates of the "
                                          "held-out and test images from the training set)"));
}

}  // namespace nfscale::train
