// finetune.h - fine-tuning a pre-trained NFNet on a target data set (paper: SAM + stochastic depth + dropout,
// train/eval resolutions that may differ, repeated augmentation at constant compute). Resolves the pre-trained
// source (run dir, checkpoint or weights file), applies the fine-tuning defaults, wraps train::run_training, and
// gives the fine-tuning compute of a request so runs can be compared at equal compute. See docs/finetuning.md.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/train/config.h"
#include "nfscale/train/trainer.h"

namespace nfscale::study {

// The documented fine-tuning defaults: TrainConfig defaults with sam_rho 0.05, base lr 0.4 at batch 64 (absolute
// 0.1, half the docs' pre-training 0.2), no flip (digits), warm-up 0.5 epoch, EMA off, stochastic depth 0.1,
// dropout = the model's default, data "digits", epochs 5, batch 64. Everything else (AGC 0.01, label smoothing 0.1, Nesterov, weight decay 2e-5)
// is the pre-training recipe.
train::TrainConfig finetune_defaults();

struct FinetuneRequest {
  // The pre-trained source: a pre-training run dir (model and activation from its config.json, weights from its
  // weights.pt), a checkpoint.pt or a weights file (then config.model is required). May be empty with scratch=true.
  std::string from;
  // The fine-tuning run. Start from finetune_defaults(). config.model may be empty when `from` is a run dir;
  // config.activation "" = inherit (run dir) or gelu. config.channels is set to the pre-trained model's input
  // channels (the loader converts the target: grey -> RGB replicates, RGB -> grey takes luma). init_from is set here.
  train::TrainConfig config = finetune_defaults();
  bool resume = false;   // continue <run_dir>/checkpoint.pt if present
  bool scratch = false;  // baseline: same model, settings and compute, but random initialisation (no weights loaded)
};

// What the source resolves to.
struct PretrainedSource {
  std::string weights_path;  // file the weights are loaded from ("" when scratch without a source)
  std::string model;         // registry name
  std::string activation;    // "" when unknown (a weights file that does not say)
  std::string ws_form;       // weight-standardisation form of the source ("" = unknown: the config's)
  int64_t in_channels = 0;   // from the stem conv weight's shape [O, C, 3, 3] (0 when scratch without a source)
};

// Resolves `from` (see FinetuneRequest::from). Throws UserError naming the path for a missing directory/file, a run
// dir whose pre-training has not finished, a file that is not an nfscale checkpoint, or a weights file with no
// model name given. `model` is the --model value ("" = none).
PretrainedSource resolve_source(const std::string& from, const std::string& model);

// The complete training configuration of a request (model, activation, channels, init_from filled in, validated).
// Throws UserError for a model that disagrees with the run dir's, an activation mismatch, or invalid settings.
train::TrainConfig resolve_finetune_config(const FinetuneRequest& request);

// Fine-tuning compute of a request, counted as in pre-training (3 x 2 x forward MACs per example at the train
// resolution) times the passes per step: 2 with SAM (ascent gradient + gradient at the perturbed weights), else 1.
// Evaluation is not counted. Opens the target data to learn its size (cheap for the built-in sets).
struct FinetuneCompute {
  int64_t train_examples = 0;   // N: target training-set size after hold-out / subset
  int64_t steps = 0;            // ceil(epochs * N / batch)
  int64_t examples = 0;         // steps * batch (repeated-augmentation copies count: m does not change this)
  int64_t macs_per_image = 0;   // forward MACs at config.resolution
  int passes = 1;               // forward+backward passes per example per step (2 with SAM)
  double flops = 0.0;           // 6 * macs_per_image * examples * passes
  double distinct_epochs = 0.0; // passes over distinct images: examples / (multiplicity * N)
};
FinetuneCompute finetune_compute(const FinetuneRequest& request);

struct FinetuneResult {
  train::TrainResult train;     // the trainer's result (train.train_flops counts both SAM passes)
  PretrainedSource source;
  bool scratch = false;
  bool completed = false;
  int64_t steps = 0;
  double seconds = 0.0;
  double flops = 0.0;           // fine-tuning FLOPs including SAM's second pass (= finetune_compute().flops)
  double test_top1_err = 0.0;   // at the eval resolution, final weights (NaN when the target has no test split)
  double test_loss = 0.0;
  double holdout_top1_err = 0.0, holdout_loss = 0.0;  // NaN without --holdout
};

// Runs the fine-tuning (resumable). Writes the usual run files to config.run_dir plus finetune.json (source, compute,
// result). Throws UserError / train::DivergedError like run_training.
FinetuneResult finetune(const FinetuneRequest& request, const train::TrainHooks& hooks = {});

nlohmann::json to_json(const FinetuneResult& r);
nlohmann::json to_json(const FinetuneCompute& c);

}  // namespace nfscale::study
