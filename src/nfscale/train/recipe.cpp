// recipe.cpp - resolution of a run's family-default settings (see recipe.h).
#include "nfscale/train/recipe.h"

#include <algorithm>

#include "nfscale/models/registry.h"
#include "nfscale/util/cpu_features.h"

namespace nfscale::train {

bool cpu_has_bf16() { return cpu_features().avx512_bf16; }  // CPUID + XGETBV (util/cpu_features.h)

std::string resolve_precision(const std::string& precision, const std::string& model) {
  // Measured (docs/performance.md, `nfscale bench`, channels_last, final session-3 code): on the mini ladder fp32
  // and bf16 are equally fast within the run-to-run noise (mini-F3 @32: fp32 1005 vs bf16 1027 img/s), so "auto"
  // keeps fp32 there (no bf16 rounding for free); the full-size members gain from bf16 where the CPU has native
  // bf16 (F0 @64: bf16 51 vs fp32 37 img/s).
  if (precision != "auto") return precision;
  return !models::model_info(model).is_ladder && cpu_has_bf16() ? "bf16" : "fp32";
}

void resolve_recipe(TrainConfig& cfg) {
  const models::TrainDefaults d = models::family_of(cfg.model).train_defaults();
  if (cfg.optimizer == "auto") cfg.optimizer = d.optimizer.kind;
  if (cfg.lr == 0.0) {
    cfg.lr = d.base_lr;
    if (d.min_abs_lr > 0 && !cfg.absolute_lr && cfg.batch > 0)
      cfg.lr = std::max(cfg.lr, d.min_abs_lr * 256.0 / static_cast<double>(cfg.batch));
  }
  // Hyper-parameter defaults of the chosen kind (which may differ from the family's default kind).
  const optim::OptimizerConfig kind_defaults;
  const bool adamw = cfg.optimizer == optim::AdamW::kKind;
  if (cfg.weight_decay < 0)
    cfg.weight_decay = adamw ? kind_defaults.adamw.weight_decay : kind_defaults.sgd.weight_decay;
  if (cfg.clip < 0) cfg.clip = adamw ? kind_defaults.adamw.clip_global_norm : kind_defaults.sgd.agc_options.clip;
  cfg.precision = resolve_precision(cfg.precision, cfg.model);
}

models::ModelConfig model_config(const TrainConfig& cfg, int64_t num_classes, int64_t in_channels) {
  models::ModelConfig mc;
  mc.name = cfg.model;
  mc.num_classes = num_classes;
  mc.in_channels = in_channels;
  mc.stochastic_depth = cfg.stochastic_depth;
  mc.dropout = cfg.dropout;
  mc.activation = cfg.activation;
  mc.ws_form = cfg.ws_form;
  mc.resolution = cfg.resolution;
  mc.pos_embed_resample = cfg.pos_embed_resample;
  return mc;
}

optim::OptimizerConfig optimizer_config(const TrainConfig& cfg, double peak_lr) {
  optim::OptimizerConfig oc;
  oc.kind = cfg.optimizer;
  oc.sgd.momentum = cfg.momentum;
  oc.sgd.nesterov = cfg.nesterov;
  oc.sgd.weight_decay = cfg.weight_decay;
  oc.sgd.agc = cfg.clip > 0;
  if (cfg.clip > 0) oc.sgd.agc_options.clip = cfg.clip;
  oc.adamw.beta1 = cfg.beta1;
  oc.adamw.beta2 = cfg.beta2;
  oc.adamw.eps = cfg.adam_eps;
  oc.adamw.weight_decay = cfg.weight_decay;
  oc.adamw.decay = optim::parse_decay_convention(cfg.decay_convention, "training setting 'decay_convention'");
  oc.adamw.peak_lr = peak_lr;
  oc.adamw.clip_global_norm = cfg.clip;
  return oc;
}

}  // namespace nfscale::train
