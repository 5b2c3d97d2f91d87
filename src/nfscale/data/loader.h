// loader.h - the multi-threaded batch loader: a std::thread pool decodes and augments whole batches, delivered in
// order through a bounded prefetch window. Every batch is a pure function of (seed, its position), so the stream is
// bit-identical for any thread count and across resumes from position().
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nfscale/data/dataset.h"
#include "nfscale/data/sampler.h"
#include "nfscale/data/transforms.h"

namespace nfscale::data {

struct Batch {
  torch::Tensor images;   // float [B,C,R,R], normalised
  torch::Tensor targets;  // float [B,K] soft targets (label smoothing + MixUp/CutMix in training; one-hot in eval)
  torch::Tensor labels;   // int64 [B] hard labels (of the row's own image, before mixing)
  int64_t position = 0;   // global position of the batch's first distinct example
  int64_t distinct = 0;   // distinct examples in the batch (B / multiplicity in training)
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

struct LoaderOptions {
  int64_t batch_size = 128;
  uint64_t seed = 0;
  int threads = 2;      // worker threads (each builds whole batches)
  int prefetch = 4;     // batches built ahead of the consumer (bounded queue)
  bool train = true;    // train: infinite shuffled stream with augmentation; eval: one ordered pass
  int64_t resolution = 32;
  AugmentConfig augment;
  // Repeated augmentation: each training batch holds batch_size / multiplicity distinct images, each augmented
  // `multiplicity` times independently (rows copy-major: row = copy * distinct + d). Positions count distinct images.
  int64_t multiplicity = 1;
  bool drop_last = false;  // eval only: drop a short last batch (a training stream never has one)
  int64_t channels = 0;    // output channels: 0 = the dataset's; 3 replicates a grey dataset; 1 converts RGB to luma
  // Data parallelism: the global stream of batches is dealt round-robin to shard_count ranks; this loader's batch k
  // is global batch k * shard_count + shard_index. Positions stay global (examples consumed by all shards), so the
  // one permutation per epoch is split across ranks and every example is seen once per epoch in total.
  int64_t shard_count = 1;
  int64_t shard_index = 0;
};

// Throws UserError naming the option if a value is invalid.
void validate(const LoaderOptions& options);

class Loader {
 public:
  // indices: the examples to draw from (e.g. Split::train); empty = the whole dataset. start_position: a value
  // returned by position() earlier (training resumes exactly there).
  Loader(std::shared_ptr<Dataset> dataset, std::vector<int64_t> indices, LoaderOptions options,
         int64_t start_position = 0);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch. Rethrows a worker's error (e.g. UserError for a corrupt image). In eval mode, throws
  // std::out_of_range after the pass is over (check has_next()).
  Batch next();
  bool has_next() const;
  // Distinct examples consumed by the batches returned so far, counted from the start of the stream (training with
  // shards: by all shards together, i.e. start + delivered x shard_count x distinct_per_batch).
  int64_t position() const { return position_; }
  int64_t distinct_per_batch() const { return distinct_; }
  int64_t num_examples() const { return static_cast<int64_t>(indices_.size()); }
  int64_t batches_per_pass() const;  // eval: batches in the pass; train: ceil(n / distinct_per_batch)
  int64_t output_channels() const { return channels_; }

  // Builds batch k (relative to the start position) synchronously: what a worker does. Exposed for tests.
  Batch make_batch(int64_t k) const;

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  void worker();
  bool pass_has(int64_t k) const;  // eval: batch k exists

  std::shared_ptr<Dataset> dataset_;
  std::vector<int64_t> indices_;
  LoaderOptions opt_;
  int64_t start_, distinct_, channels_, classes_;
  EpochSampler sampler_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Slot> ready_;
  int64_t next_claim_ = 0, delivered_ = 0, position_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace nfscale::data
