// run_dir.h - a training run's directory: its file paths, the stored configuration that wins on resume, the
// resolved recipe written to config.json, and clean-up of temp files left by a kill -9.
#pragma once
#include <string>

#include "nfscale/train/config.h"

namespace nfscale::train {

struct RunDir {
  std::string dir, config, checkpoint, metrics, weights, weights_ema, result, dedup;
  bool resuming = false;  // resume was asked and a checkpoint exists
};

// Creates cfg.run_dir; on resume with a checkpoint, replaces `cfg` by the stored config.json (keeping only the
// logistics that do not change the result: quiet, checkpoint_seconds/steps, loader_threads); resolves the recipe
// (recipe.h) and writes config.json atomically; removes temp files of interrupted checkpoint/weights writes.
// primary=false (data-parallel ranks > 0, after rank 0 opened the directory): writes nothing and takes the config
// rank 0 wrote (logistics kept), so every rank trains with the same resolved configuration.
RunDir open_run_dir(TrainConfig& cfg, bool resume, bool primary = true);

}  // namespace nfscale::train
