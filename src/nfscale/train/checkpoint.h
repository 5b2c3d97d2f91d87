// checkpoint.h - crash-safe training checkpoints: model, optimiser, EMA and loop position in one file,
// written atomically (temp file, fsync, rename) so a kill at any moment leaves the previous good checkpoint.
// The file formats themselves (torch archive, safetensors) and name maps live in src/nfscale/weights/.
#pragma once
#include <cstdint>
#include <string>

namespace torch::serialize {
class InputArchive;
}
namespace nfscale::models {
class ClassifierImpl;
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
void save_checkpoint(const std::string& path, models::ClassifierImpl& model, const optim::Optimizer& optimizer,
                     const optim::Ema* ema, const LoopState& state);

// Loads a checkpoint written by save_checkpoint. Throws UserError naming the file if it is unreadable, of an unknown
// format version (check_checkpoint_format), of another WS form than the model, does not match the model, or records
// another optimiser kind than optimizer.kind() (checkpoints without a recorded kind were written by SGD+AGC).
LoopState load_checkpoint(const std::string& path, models::ClassifierImpl& model, optim::Optimizer& optimizer,
                          optim::Ema* ema);

// Loads only the model weights from a checkpoint, weights.pt or .safetensors file (nfscale or timm names, detected).
// With a non-empty `skip_prefix` (the classifier, "fc.", when fine-tuning) the import is not strict: a classifier of
// another size is left as built. Otherwise every tensor must match; one UserError lists all that do not.
// Returns the number of tensors loaded.
int64_t load_weights(const std::string& path, models::ClassifierImpl& model, const std::string& skip_prefix = "");

// Saves only the model weights (weights.pt: a torch archive, nfscale names, the WS form in its metadata).
void save_weights(const std::string& path, models::ClassifierImpl& model);

// The checkpoint format version this build writes, and the check on load: the "format" entry of a checkpoint's
// "state" must be 1..checkpoint_format_version(); UserError naming the file and the version otherwise. Returns it.
int64_t checkpoint_format_version();
int64_t check_checkpoint_format(const std::string& path, torch::serialize::InputArchive& state);

}  // namespace nfscale::train
