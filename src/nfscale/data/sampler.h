// sampler.h - the epoch sampler: the loader's position is one integer g (examples consumed since the start);
// epoch e = g / n uses a permutation that is a pure function of (seed, e), and offset g % n indexes into it.
// Resuming from any g reproduces the stream exactly, so every example is seen exactly once per epoch across any
// number of interruptions (the failure mode the paper admits for its own pipeline).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace nfscale::data {

class EpochSampler {
 public:
  // n examples; shuffle=false gives the identity order every epoch (evaluation).
  EpochSampler(int64_t n, uint64_t seed, bool shuffle = true);
  int64_t size() const { return n_; }
  // Position in [0, n) of the example at global position g >= 0. Thread-safe (caches the two latest epochs).
  int64_t at(int64_t g) const;
  // The whole order of one epoch (a permutation of [0, n)).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) const;
  int64_t n_;
  uint64_t seed_;
  bool shuffle_;
  mutable std::mutex mu_;
  mutable int64_t cached_epoch_[2] = {-1, -1};
  mutable std::shared_ptr<const std::vector<int64_t>> cached_[2];
  mutable int next_slot_ = 0;
};

}  // namespace nfscale::data
