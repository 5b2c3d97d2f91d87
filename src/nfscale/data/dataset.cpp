// dataset.cpp - Dataset base helpers, data-spec parsing, the open_dataset factory, subset views, held-out splits
// and per-dataset normalisation statistics.
#include "nfscale/data/dataset.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "nfscale/data/readers.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::data {
namespace {

const std::vector<std::string>& known_kinds() {
  static const std::vector<std::string> k = {"fashion-mnist", "mnist", "idx", "cifar10", "cifar100",
                                             "imagefolder", "digits"};
  return k;
}

std::string join_kinds() {
  std::string s;
  for (const auto& k : known_kinds()) s += (s.empty() ? "" : " | ") + k;
  return s;
}

// Fisher-Yates permutation of [0, n) from a counter-based stream.
std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  SplitMix rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[static_cast<size_t>(i)], p[rng.below(static_cast<uint64_t>(i + 1))]);
  return p;
}

}  // namespace

Dataset::~Dataset() = default;

Example Dataset::get(int64_t i) const {
  RawExample raw = load(i);
  return Example{to_tensor(raw.image), raw.label};
}

bool has_split_suffix(const std::string& text) {
  auto ends = [&](const std::string& suffix) {
    return text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(":train") || ends(":test");
}

DataSpec parse_data_spec(const std::string& text, const std::string& field) {
  DataSpec spec;
  size_t a = text.find(':');
  spec.kind = text.substr(0, a);
  if (a != std::string::npos) {
    std::string rest = text.substr(a + 1);
    size_t b = rest.rfind(':');
    if (b != std::string::npos && (rest.substr(b + 1) == "train" || rest.substr(b + 1) == "test")) {
      spec.split = rest.substr(b + 1);
      rest = rest.substr(0, b);
    }
    spec.path = rest;
  }
  require(std::find(known_kinds().begin(), known_kinds().end(), spec.kind) != known_kinds().end(),
          field + ": unknown dataset kind '" + spec.kind + "' in '" + text + "'; use one of " + join_kinds() +
              ", optionally followed by :path and :train|test");
  return spec;
}

std::shared_ptr<Dataset> open_dataset(const DataSpec& spec) {
  require(spec.split == "train" || spec.split == "test",
          "data spec: split '" + spec.split + "' is not known; use train or test");
  if (spec.kind == "fashion-mnist" || spec.kind == "mnist") {
    DataSpec s = spec;
    if (s.path.empty()) {
      require(spec.kind == "fashion-mnist",
              "data spec: mnist has no default location; give mnist:<directory with the IDX files>");
      s.path = kFashionMnistDir;
    }
    return open_idx(s, 10);
  }
  if (spec.kind == "idx") return open_idx(spec, 0);
  if (spec.kind == "cifar10" || spec.kind == "cifar100") return open_cifar(spec, spec.kind == "cifar100");
  if (spec.kind == "imagefolder") return open_image_folder(spec);
  if (spec.kind == "digits") return open_digits(spec);
  throw UserError("data spec: unknown dataset kind '" + spec.kind + "'; use one of " + join_kinds());
}

SubsetDataset::SubsetDataset(std::shared_ptr<Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  for (int64_t i : indices_)
    if (i < 0 || i >= base_->size())
      throw std::out_of_range("SubsetDataset: index " + std::to_string(i) + " outside [0, " +
                              std::to_string(base_->size()) + ")");
}

std::string SubsetDataset::describe() const {
  return std::to_string(indices_.size()) + " of " + base_->describe();
}

Split holdout_split(int64_t n, int64_t holdout, uint64_t seed) {
  require(holdout >= 0 && holdout < n, "holdout size " + std::to_string(holdout) + " must be in [0, " +
                                           std::to_string(n) + ") (the training set has " + std::to_string(n) +
                                           " examples); choose a smaller held-out set");
  auto p = permutation(n, derive_seed(seed, {0x401D07ull}));
  Split s;
  s.holdout.assign(p.begin(), p.begin() + holdout);
  s.train.assign(p.begin() + holdout, p.end());
  std::sort(s.holdout.begin(), s.holdout.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

Split stratified_holdout_split(const std::vector<int64_t>& labels, int64_t num_classes, int64_t holdout, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(labels.size());
  require(holdout >= 0 && holdout < n, "holdout size " + std::to_string(holdout) + " must be in [0, " +
                                           std::to_string(n) + "); choose a smaller held-out set");
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < n; ++i) by_class.at(static_cast<size_t>(labels[static_cast<size_t>(i)])).push_back(i);
  // Largest-remainder apportionment of `holdout` over classes (ties broken by class id).
  std::vector<int64_t> take(static_cast<size_t>(num_classes));
  std::vector<std::pair<double, int64_t>> rem;
  int64_t given = 0;
  for (int64_t k = 0; k < num_classes; ++k) {
    double exact = static_cast<double>(holdout) * static_cast<double>(by_class[k].size()) / static_cast<double>(n);
    take[k] = static_cast<int64_t>(exact);
    given += take[k];
    rem.emplace_back(-(exact - static_cast<double>(take[k])), k);
  }
  std::sort(rem.begin(), rem.end());
  for (size_t r = 0; given < holdout && r < rem.size(); ++r, ++given) take[rem[r].second] += 1;
  Split s;
  for (int64_t k = 0; k < num_classes; ++k) {
    const auto& members = by_class[k];
    auto p = permutation(static_cast<int64_t>(members.size()), derive_seed(seed, {0x401D07ull, uint64_t(k)}));
    for (size_t j = 0; j < p.size(); ++j)
      (static_cast<int64_t>(j) < take[k] ? s.holdout : s.train).push_back(members[static_cast<size_t>(p[j])]);
  }
  std::sort(s.holdout.begin(), s.holdout.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

std::vector<int64_t> all_labels(const Dataset& dataset) {
  std::vector<int64_t> out(static_cast<size_t>(dataset.size()));
  for (int64_t i = 0; i < dataset.size(); ++i) out[static_cast<size_t>(i)] = dataset.label(i);
  return out;
}

void default_normalisation(const std::string& kind, int64_t channels, std::vector<double>& mean,
                           std::vector<double>& std) {
  if (kind == "fashion-mnist") mean = {0.2860}, std = {0.3530};
  else if (kind == "mnist") mean = {0.1307}, std = {0.3081};
  else if (kind == "digits") mean = {0.3053}, std = {0.3759};
  else if (kind == "cifar10") mean = {0.4914, 0.4822, 0.4465}, std = {0.2470, 0.2435, 0.2616};
  else if (kind == "cifar100") mean = {0.5071, 0.4865, 0.4409}, std = {0.2673, 0.2564, 0.2762};
  else mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};  // ImageNet
  // Adapt to the requested channel count: replicate a grey statistic, or average RGB statistics for grey.
  auto adapt = [channels](std::vector<double>& v) {
    if (static_cast<int64_t>(v.size()) == channels) return;
    double avg = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    v.assign(static_cast<size_t>(channels), avg);
  };
  adapt(mean);
  adapt(std);
}

}  // namespace nfscale::data
