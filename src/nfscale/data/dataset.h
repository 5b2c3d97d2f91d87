// dataset.h - the random-access dataset interface of the data pipeline, the data-spec parser and factory
// (fashion-mnist | mnist | idx | cifar10 | cifar100 | imagefolder | digits), subset views and the deterministic
// held-out split carved from a training set.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfscale/data/image.h"

namespace nfscale::data {

// One example as a tensor: image uint8 [C,H,W].
struct Example {
  torch::Tensor image;
  int64_t label = 0;
};

// One example as a raw buffer (what the loader uses; no tensor allocation per image).
struct RawExample {
  Image image;  // uint8 planar [C,H,W], C == Dataset::channels()
  int64_t label = 0;
};

class Dataset {
 public:
  virtual ~Dataset();
  virtual int64_t size() const = 0;
  // Loads (and for image folders decodes) example i. Thread-safe. Throws UserError on bad data unless the
  // dataset was opened with skip_bad, in which case a bad lazily-decoded image is replaced deterministically
  // (by the next good index, cyclically) and counted in replaced().
  virtual RawExample load(int64_t i) const = 0;
  virtual int64_t label(int64_t i) const = 0;  // cheap, no decoding
  virtual int64_t num_classes() const = 0;
  virtual int64_t channels() const = 0;
  virtual std::string describe() const = 0;
  // Examples dropped at open time because they were bad (skip_bad only).
  virtual int64_t skipped() const { return 0; }
  // Bad images met while loading and replaced so far (skip_bad only; counts every replacement event).
  virtual int64_t replaced() const { return 0; }

  Example get(int64_t i) const;  // load() as a tensor
};

struct DataSpec {
  std::string kind;          // fashion-mnist | mnist | idx | cifar10 | cifar100 | imagefolder | digits
  std::string path;          // directory (or file for digits); "" = the kind's default location
  std::string split = "train";  // train | test
  bool skip_bad = false;
};
// True when `text` names its split explicitly (ends in ":train" or ":test"); a test-data spec without one means
// the test split ("mnist:DIR" = the t10k files of DIR).
bool has_split_suffix(const std::string& text);

// Parses "kind", "kind:path" or "kind:path:split" (e.g. "fashion-mnist", "cifar10:/data/cifar:test").
// Throws UserError naming `field` (e.g. "--data") for an unknown kind or split.
DataSpec parse_data_spec(const std::string& text, const std::string& field = "data spec");

// Opens the dataset. Throws UserError naming the file and the problem on missing or bad data.
std::shared_ptr<Dataset> open_dataset(const DataSpec& spec);

// A view over a list of indices of another dataset.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  RawExample load(int64_t i) const override { return base_->load(indices_.at(static_cast<size_t>(i))); }
  int64_t label(int64_t i) const override { return base_->label(indices_.at(static_cast<size_t>(i))); }
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  std::string describe() const override;
  int64_t skipped() const override { return base_->skipped(); }
  int64_t replaced() const override { return base_->replaced(); }

 private:
  std::shared_ptr<Dataset> base_;
  std::vector<int64_t> indices_;
};

// A deterministic held-out split of [0, n): `holdout` indices chosen by a permutation derived from `seed`, the rest
// for training; both lists sorted ascending. Separate from the dataset's test split.
struct Split {
  std::vector<int64_t> train, holdout;
};
Split holdout_split(int64_t n, int64_t holdout, uint64_t seed);
// Stratified variant: each class contributes round(holdout * class_count / n) (largest remainders so the total is
// exactly `holdout`), chosen by a per-class permutation derived from (seed, class).
Split stratified_holdout_split(const std::vector<int64_t>& labels, int64_t num_classes, int64_t holdout, uint64_t seed);
// All labels of a dataset (cheap).
std::vector<int64_t> all_labels(const Dataset& dataset);

// Per-dataset normalisation statistics on the 0..1 scale (mean, std per channel of the dataset's channels);
// ImageNet statistics for kinds without known values.
void default_normalisation(const std::string& kind, int64_t channels, std::vector<double>& mean,
                           std::vector<double>& std);

}  // namespace nfscale::data
