// data_setup.h - turns a TrainConfig's data settings into datasets, the hold-out / training index lists, and the
// augmentation and loader options (one place, shared by training, evaluation and the CLI).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfscale/data/loader.h"
#include "nfscale/data/transforms.h"
#include "nfscale/train/evaluate.h"

namespace nfscale::data {
class Dataset;
}

namespace nfscale::train {

struct TrainConfig;

struct RunData {
  std::shared_ptr<data::Dataset> train_set;     // the whole training split
  std::vector<int64_t> train_indices;           // used for training (after hold-out and train_examples)
  std::vector<int64_t> holdout_indices;         // carved from the training split (may be empty)
  std::shared_ptr<data::Dataset> test_set;      // may be null when the data has no test split
  std::vector<int64_t> test_indices;
  int64_t num_classes = 0;
  int64_t channels = 0;                         // model input channels
  std::string kind;                             // data kind (for normalisation defaults)
};

// Opens the datasets and computes the splits. Hold-out: stratified, seeded by the run seed's data stream so that
// every trial of a study with the same seed uses the same hold-out set (seed-independent: derived from 0).
RunData setup_data(const TrainConfig& config);

// Augmentation settings implied by the config (train) and evaluation settings.
data::AugmentConfig make_augment(const TrainConfig& config, const RunData& data);

// Loader options for the training stream (micro-batches).
data::LoaderOptions make_train_loader_options(const TrainConfig& config, const RunData& data);
// Evaluation settings of a run: eval resolution, loader threads, channels, layout, normalisation.
EvalOptions make_eval_options(const TrainConfig& config, const RunData& data, bool bf16);

}  // namespace nfscale::train
