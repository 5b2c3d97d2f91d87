// data_setup.cpp - datasets, splits and loader options of a run.
#include "nfscale/train/data_setup.h"

#include <algorithm>

#include "nfscale/data/dataset.h"
#include "nfscale/train/config.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::train {

RunData setup_data(const TrainConfig& c) {
  RunData d;
  data::DataSpec train_spec = data::parse_data_spec(c.data, "--data");
  train_spec.split = "train";
  d.kind = train_spec.kind;
  d.train_set = data::open_dataset(train_spec);
  d.num_classes = d.train_set->num_classes();
  d.channels = c.channels > 0 ? c.channels : d.train_set->channels();
  const int64_t n = d.train_set->size();
  require(c.holdout < n, "--holdout " + std::to_string(c.holdout) + " leaves no training examples: '" + c.data +
                             "' has " + std::to_string(n) + "; choose a smaller hold-out");
  // The hold-out depends only on the data (seed 0), so all trials and seeds of a study share it.
  data::Split split = c.holdout > 0 ? data::stratified_holdout_split(data::all_labels(*d.train_set), d.num_classes,
                                                                     c.holdout, /*seed=*/0)
                                    : data::Split{};
  if (c.holdout == 0) {
    d.train_indices.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) d.train_indices[static_cast<size_t>(i)] = i;
  } else {
    d.train_indices = std::move(split.train);
    d.holdout_indices = std::move(split.holdout);
  }
  if (c.train_examples > 0 && c.train_examples < static_cast<int64_t>(d.train_indices.size())) {
    // A fixed subset (independent of the run seed): the first train_examples of a seeded permutation, kept sorted.
    std::vector<int64_t> idx = d.train_indices;
    SplitMix rng(derive_seed(0, {0x5355ull}));
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
    idx.resize(static_cast<size_t>(c.train_examples));
    std::sort(idx.begin(), idx.end());
    d.train_indices = std::move(idx);
  }
  std::string test_text = c.test_data;
  if (test_text.empty() && train_spec.kind != "imagefolder" && train_spec.kind != "idx") {
    data::DataSpec ts = train_spec;
    ts.split = "test";
    d.test_set = data::open_dataset(ts);
  } else if (!test_text.empty() && test_text != "none") {
    data::DataSpec ts = data::parse_data_spec(test_text, "--test-data");
    if (test_text.find(':') == std::string::npos || ts.split.empty()) ts.split = "test";
    d.test_set = data::open_dataset(ts);
    require(d.test_set->num_classes() <= d.num_classes,
            "--test-data '" + test_text + "' has more classes than the training data '" + c.data + "'");
  }
  if (d.test_set) {
    d.test_indices.resize(static_cast<size_t>(d.test_set->size()));
    for (int64_t i = 0; i < d.test_set->size(); ++i) d.test_indices[static_cast<size_t>(i)] = i;
  }
  return d;
}

data::AugmentConfig make_augment(const TrainConfig& c, const RunData& d) {
  data::AugmentConfig a;
  a.random_resized_crop = c.augment;
  a.area_min = c.crop_min_area;
  a.flip = c.augment && c.flip;
  a.randaug_layers = c.randaugment_layers;
  a.randaug_magnitude = c.randaugment_magnitude;
  a.mixup_alpha = c.mixup;
  a.cutmix_alpha = c.cutmix;
  a.label_smoothing = c.label_smoothing;
  data::default_normalisation(d.kind, d.channels, a.mean, a.std);
  return a;
}

data::LoaderOptions make_train_loader_options(const TrainConfig& c, const RunData& d) {
  data::LoaderOptions o;
  o.batch_size = c.micro();
  o.seed = c.seed;
  o.threads = c.loader_threads;
  o.train = true;
  o.resolution = c.resolution;
  o.augment = make_augment(c, d);
  o.multiplicity = c.multiplicity;
  o.channels = d.channels;
  return o;
}

EvalOptions make_eval_options(const TrainConfig& c, const RunData& d, bool bf16) {
  EvalOptions eo;
  eo.resolution = c.eval_res();
  eo.threads = c.loader_threads;
  eo.channels = d.channels;
  eo.bf16 = bf16;
  eo.channels_last = c.channels_last;
  eo.augment = make_augment(c, d);
  return eo;
}

}  // namespace nfscale::train
