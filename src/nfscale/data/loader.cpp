// loader.cpp - batch construction (sampling, per-example transforms, targets, mixing) and the worker pool with an
// in-order bounded prefetch window.
#include "nfscale/data/loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "nfscale/data/mix.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::data {
namespace {
constexpr uint64_t kExampleTag = 0xE4A3B1Eull, kMixTag = 0x31C5ull;
}

void validate(const LoaderOptions& o) {
  require(o.batch_size > 0, "loader.batch_size: must be positive");
  require(o.multiplicity >= 1 && o.batch_size % o.multiplicity == 0,
          "loader.multiplicity: " + std::to_string(o.multiplicity) + " must be >= 1 and divide batch_size " +
              std::to_string(o.batch_size));
  require(o.threads >= 1 && o.threads <= 64, "loader.threads: need 1..64");
  require(o.prefetch >= 1, "loader.prefetch: need >= 1");
  require(o.resolution >= 1 && o.resolution <= 4096, "loader.resolution: need 1..4096");
  require(o.channels == 0 || o.channels == 1 || o.channels == 3, "loader.channels: need 0 (keep), 1 or 3");
  require(o.shard_count >= 1 && o.shard_index >= 0 && o.shard_index < o.shard_count,
          "loader.shard_index: " + std::to_string(o.shard_index) + " must be in [0, shard_count=" +
              std::to_string(o.shard_count) + ")");
  validate(o.augment, "loader.augment");
}

Loader::Loader(std::shared_ptr<Dataset> dataset, std::vector<int64_t> indices, LoaderOptions options,
               int64_t start_position)
    : dataset_(std::move(dataset)), indices_(std::move(indices)), opt_(std::move(options)), start_(start_position),
      distinct_(opt_.train ? opt_.batch_size / std::max<int64_t>(1, opt_.multiplicity) : opt_.batch_size),
      channels_(opt_.channels > 0 ? opt_.channels : dataset_->channels()), classes_(dataset_->num_classes()),
      sampler_(std::max<int64_t>(1, indices_.empty() ? dataset_->size() : static_cast<int64_t>(indices_.size())),
               opt_.seed, opt_.train),
      position_(start_position) {
  validate(opt_);
  if (indices_.empty()) {
    indices_.resize(static_cast<size_t>(dataset_->size()));
    std::iota(indices_.begin(), indices_.end(), int64_t{0});
  }
  require(!indices_.empty(), "loader: the dataset (" + dataset_->describe() + ") has no examples");
  for (int64_t i : indices_)
    require(i >= 0 && i < dataset_->size(), "loader: index " + std::to_string(i) + " is outside the dataset (" +
                                                std::to_string(dataset_->size()) + " examples)");
  require(start_position >= 0, "loader: negative start position " + std::to_string(start_position));
  if (!opt_.train) require(opt_.multiplicity == 1, "loader.multiplicity: repeated augmentation is for training only");
  for (int t = 0; t < opt_.threads; ++t) workers_.emplace_back([this] { worker(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

bool Loader::pass_has(int64_t k) const {
  if (opt_.train) return true;
  const int64_t start = start_ + (k * opt_.shard_count + opt_.shard_index) * distinct_, n = num_examples();
  if (start >= n) return false;
  return !(opt_.drop_last && n - start < distinct_);
}

int64_t Loader::batches_per_pass() const {
  const int64_t n = num_examples();
  if (opt_.train || !opt_.drop_last) return (n + distinct_ - 1) / distinct_;
  return n / distinct_;
}

bool Loader::has_next() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pass_has(delivered_);
}

Batch Loader::make_batch(int64_t k) const {
  const int64_t R = opt_.resolution, C = channels_, K = classes_, m = opt_.train ? opt_.multiplicity : 1;
  const int64_t first = start_ + (k * opt_.shard_count + opt_.shard_index) * distinct_;  // global position
  const int64_t d_count = opt_.train ? distinct_ : std::min(distinct_, num_examples() - first);
  const int64_t B = d_count * m, image_size = C * R * R;
  Batch b;
  b.position = first;
  b.distinct = d_count;
  b.images = torch::empty({B, C, R, R}, torch::kFloat32);  // [B,C,R,R]
  b.targets = torch::empty({B, K}, torch::kFloat32);       // [B,K]
  b.labels = torch::empty({B}, torch::kInt64);             // [B]
  float* images = b.images.data_ptr<float>();
  int64_t* labels = b.labels.data_ptr<int64_t>();
  for (int64_t d = 0; d < d_count; ++d) {
    const int64_t g = first + d;
    const int64_t idx = indices_[static_cast<size_t>(opt_.train ? sampler_.at(g) : g)];
    RawExample ex = dataset_->load(idx);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t row = j * d_count + d;
      const uint64_t seed = derive_seed(opt_.seed, {kExampleTag, static_cast<uint64_t>(g), static_cast<uint64_t>(j)});
      transform_example(ex.image, opt_.augment, R, C, opt_.train, seed, images + row * image_size);
      labels[row] = ex.label;
    }
  }
  float* targets = b.targets.data_ptr<float>();
  smooth_targets(labels, B, K, opt_.train ? opt_.augment.label_smoothing : 0.0, targets);
  if (opt_.train) {
    SplitMix rng(derive_seed(opt_.seed, {kMixTag, static_cast<uint64_t>(first)}));
    const double mix_a = opt_.augment.mixup_alpha, cut_a = opt_.augment.cutmix_alpha;
    if (mix_a > 0 && cut_a > 0) {
      mixup_rows(images, targets, 0, B / 2, image_size, K, mix_a, rng);
      cutmix_rows(images, targets, B / 2, B, C, R, R, K, cut_a, rng);
    } else if (mix_a > 0) {
      mixup_rows(images, targets, 0, B, image_size, K, mix_a, rng);
    } else if (cut_a > 0) {
      cutmix_rows(images, targets, 0, B, C, R, R, K, cut_a, rng);
    }
  }
  return b;
}

void Loader::worker() {
  while (true) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || (next_claim_ < delivered_ + opt_.prefetch && pass_has(next_claim_)); });
      if (stop_) return;
      k = next_claim_++;
    }
    Slot slot;
    try {
      slot.batch = make_batch(k);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_[k] = std::move(slot);
    }
    cv_.notify_all();
  }
}

Batch Loader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!pass_has(delivered_)) throw std::out_of_range("Loader::next: the evaluation pass is over");
  const int64_t k = delivered_;
  cv_.wait(lock, [&] { return ready_.count(k) > 0; });
  Slot slot = std::move(ready_[k]);
  ready_.erase(k);
  if (slot.error) {
    // Keep the failure sticky-free: the batch is not consumed, so position() stays valid for a restart.
    ready_.emplace(k, Slot{Batch{}, slot.error});
    std::rethrow_exception(slot.error);
  }
  ++delivered_;
  // Training: every shard has consumed its batch of this round (a step consumes whole rounds), so the global
  // position is the end of the round; with one shard this is the batch's end.
  position_ = opt_.train ? start_ + delivered_ * opt_.shard_count * distinct_ : slot.batch.position + slot.batch.distinct;
  lock.unlock();
  cv_.notify_all();
  return std::move(slot.batch);
}

}  // namespace nfscale::data
