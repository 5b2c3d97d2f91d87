// recipe.h - the run's recipe resolved from its model family: "auto" precision, the optimiser kind and its
// family-default hyper-parameters (TrainConfig's sentinel values), and the optimiser configuration they give.
#pragma once
#include <string>

#include "nfscale/models/classifier.h"
#include "nfscale/optim/optimizer_factory.h"
#include "nfscale/train/config.h"

namespace nfscale::train {

// True if the CPU supports avx512_bf16 (native bf16 GEMMs: bf16 autocast pays off for the full-size members).
bool cpu_has_bf16();

// Resolves precision "auto" for `model` (a registry name or spec): "bf16" for full-size members on a CPU with
// avx512_bf16, "fp32" for ladder members (is_ladder) or without avx512_bf16. "fp32"/"bf16" are returned unchanged.
std::string resolve_precision(const std::string& precision, const std::string& model);

// Fills every family-default field of `cfg` from the model family (models/family.h): optimizer "auto" -> the
// family's kind; lr 0 -> the family's base LR; weight_decay < 0 and clip < 0 -> the defaults of the chosen kind;
// precision "auto" -> resolve_precision. Idempotent: a resolved config is returned unchanged.
void resolve_recipe(TrainConfig& cfg);

// The model `cfg` trains, for data of `num_classes` classes and `in_channels` channels: its name, stochastic depth,
// dropout, activation, WS form, and (ViTs) the position-embedding grid (cfg.resolution) and resampling.
models::ModelConfig model_config(const TrainConfig& cfg, int64_t num_classes, int64_t in_channels);

// The optimiser configuration of a resolved config; peak_lr is the schedule's peak (AdamW's big_vision decay).
optim::OptimizerConfig optimizer_config(const TrainConfig& cfg, double peak_lr);

}  // namespace nfscale::train
