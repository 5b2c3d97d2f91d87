// checkpoint.h - crash-safe training checkpoints: model, optimiser, EMA and loop position in one file,
// written atomically (temp file, fsync, rename) so a kill at any moment leaves the previous good checkpoint.
#pragma once
#include <cstdint>
#include <string>

namespace torch::nn {
class Module;
}
namespace nfscale::optim {
class Optimizer;
class Ema;
}

namespace nfscale::train {

struct LoopState {
  int64_t step = 0;           // optimiser steps completed
  int64_t position = 0;       // data-loader position (distinct examples consumed)
  int64_t examples_seen = 0;  // examples processed (counts repeated-augmentation copies)
  double seconds = 0.0;       // wall seconds of training so far (across resumes)
  int64_t total_steps = 0;    // for a consistency check on resume
};

// Writes model + optimiser (its kind recorded) (+ EMA if non-null) + state to `path` atomically.
void save_checkpoint(const std::string& path, torch::nn::Module& model, const optim::Optimizer& optimizer,
                     const optim::Ema* ema, const LoopState& state);

// Loads a checkpoint written by save_checkpoint. Throws UserError naming the file if it is unreadable or does not
// match the model, or if its optimiser kind differs from optimizer.kind() (checkpoints without a recorded kind were
// written by SGD+AGC).
LoopState load_checkpoint(const std::string& path, torch::nn::Module& model, optim::Optimizer& optimizer,
                          optim::Ema* ema);

// Loads only the model weights (parameters and buffers) from a checkpoint or weights file. Parameters whose name
// starts with one of `skip_prefix` (e.g. the classifier, when fine-tuning) are left as they are. Returns the number
// of tensors loaded.
int64_t load_weights(const std::string& path, torch::nn::Module& model, const std::string& skip_prefix = "");

// Saves only the model weights (for final/exported models).
void save_weights(const std::string& path, torch::nn::Module& model);

}  // namespace nfscale::train
