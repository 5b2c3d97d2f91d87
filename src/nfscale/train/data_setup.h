// data_setup.h - turns a TrainConfig's data settings into datasets, the hold-out / training index lists, and the
// augmentation and loader options (one place, shared by training, evaluation and the CLI).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nfscale/data/loader.h"
#include "nfscale/data/transforms.h"
#include "nfscale/train/evaluate.h"

namespace nfscale::data {
class Dataset;
}

namespace nfscale::train {

struct TrainConfig;

// Near-duplicate removal of a run (TrainConfig::dedup = "on"): the training images that are confirmed
// near-duplicates (data/dedup.h, default options) of a held-out image (the same split) or a test image.
struct RunDedup {
  bool applied = false;          // dedup was on
  bool from_record = false;      // `removed` was read from a dedup.json record (resume) instead of computed
  bool cached = false;           // taken from this process's memo or the on-disk cache (dedup_cache.h)
  int64_t train_before = 0;      // training indices before removal (after the hold-out, before train_examples)
  std::vector<int64_t> removed;  // dataset indices removed, ascending
  double seconds = 0;            // time of the computation (0 from a record)
  nlohmann::json record;         // what <run_dir>/dedup.json holds: options, counts per compared set, removed
};

struct RunData {
  std::shared_ptr<data::Dataset> train_set;     // the whole training split
  std::vector<int64_t> train_indices;           // used for training (after hold-out and train_examples)
  std::vector<int64_t> holdout_indices;         // carved from the training split (may be empty)
  std::shared_ptr<data::Dataset> test_set;      // may be null when the data has no test split
  std::vector<int64_t> test_indices;
  int64_t num_classes = 0;
  int64_t channels = 0;                         // model input channels
  std::string kind;                             // data kind (for normalisation defaults)
  RunDedup dedup;                               // near-duplicate removal (applied before train_examples)
};

// Opens the datasets and computes the splits. Hold-out: stratified, seeded by the run seed's data stream so that
// every trial of a study with the same seed uses the same hold-out set (seed-independent: derived from 0).
// With config.dedup = "on" the training indices lose their confirmed near-duplicates of the held-out and test
// images, before the train_examples subset is drawn. When `dedup_record` names an existing dedup.json (a resumed
// run), its removed indices are used as recorded (checked against the current split), so a resumed run trains on
// exactly the indices it started with; otherwise they are computed (deterministic: a pure function of the data,
// the hold-out and the options; remembered per process and in the on-disk cache of dedup_cache.h, so a study
// computes them once).
RunData setup_data(const TrainConfig& config, const std::string& dedup_record = "");

// One line for the log: how many images were removed, matching how many held-out / test images, the thresholds.
std::string describe_dedup(const RunDedup& dedup);

// Augmentation settings implied by the config (train) and evaluation settings.
data::AugmentConfig make_augment(const TrainConfig& config, const RunData& data);

// Loader options for the training stream (micro-batches).
data::LoaderOptions make_train_loader_options(const TrainConfig& config, const RunData& data);
// Evaluation settings of a run: eval resolution, loader threads, channels, layout, normalisation.
EvalOptions make_eval_options(const TrainConfig& config, const RunData& data, bool bf16);

}  // namespace nfscale::train
