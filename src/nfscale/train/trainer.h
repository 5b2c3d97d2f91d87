// trainer.h - the pre-training / fine-tuning loop: the model family's optimiser (SGD + AGC for NFNets, AdamW for
// ViTs) on accumulated micro-batches, warm-up + cosine schedule over a (fractional) epoch budget, EMA, SAM, bf16,
// atomic checkpoints with exact resume, metrics, progress and evaluation.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "nfscale/train/config.h"
#include "nfscale/train/evaluate.h"
#include "nfscale/train/recipe.h"  // resolve_precision, resolve_recipe (resolved once per run dir)

#include "nfscale/util/error.h"

namespace nfscale::dist {
class Communicator;
}

namespace nfscale::train {

// Thrown when the training loss becomes non-finite (too high a learning rate). A sweep records the trial as failed
// and the adaptive LR search treats it as an infinitely bad loss.
class DivergedError : public UserError {
 public:
  using UserError::UserError;
};

// One evaluation during or at the end of training.
struct EvalPoint {
  int64_t step = 0;
  double epoch = 0.0;          // distinct examples consumed / training-set size
  int64_t examples_seen = 0;
  double flops = 0.0;          // training FLOPs so far (3 x forward MACs x 2 x examples)
  bool has_holdout = false, has_test = false;
  EvalResult holdout, test;
};

struct TrainHooks {
  std::function<void(const EvalPoint&)> on_eval;  // called after every evaluation
  std::function<bool()> should_stop;              // polled every step; true = checkpoint and return
  // Data parallelism (dist/communicator.h): null = one process. With world size W, --batch is the global batch
  // (per-rank micro-batch x W x accumulation steps), gradients are averaged before clipping, rank 0 writes the run
  // dir (config, checkpoints, metrics, weights, result), evaluation is split across ranks and summed, and the stop
  // decision (signal, should_stop, divergence) is taken by all ranks together.
  dist::Communicator* comm = nullptr;
};

struct TrainResult {
  bool completed = false;       // reached the last step
  bool interrupted = false;     // stopped early (signal or hook) after writing a checkpoint
  int64_t steps = 0, total_steps = 0;
  int64_t examples_seen = 0;
  int64_t train_examples = 0;   // training-set size (after the hold-out split)
  int64_t params = 0;
  int64_t macs_per_image = 0;   // forward multiply-adds per image at the train resolution
  double train_flops = 0.0;     // 3 x 2 x MACs x examples_seen
  double seconds = 0.0;         // wall seconds spent training (across resumes)
  EvalPoint final_eval;
  std::string checkpoint_path;  // <run_dir>/checkpoint.pt
  std::string weights_path;     // <run_dir>/weights.pt (final weights, written on completion)
};

// Runs (or, with resume=true and a checkpoint present, continues) the training described by `config`.
// Writes <run_dir>/config.json, checkpoint.pt, metrics.jsonl, and on completion weights.pt and result.json.
TrainResult run_training(const TrainConfig& config, bool resume, const TrainHooks& hooks = {});

nlohmann::json to_json(const TrainResult& r);
nlohmann::json to_json(const EvalPoint& p);

}  // namespace nfscale::train
