// sampler.cpp - epoch permutations by Fisher-Yates on a SplitMix stream seeded with derive_seed(seed, {epoch}).
#include "nfscale/data/sampler.h"

#include <numeric>
#include <stdexcept>
#include <string>

#include "nfscale/util/rng.h"

namespace nfscale::data {

EpochSampler::EpochSampler(int64_t n, uint64_t seed, bool shuffle) : n_(n), seed_(seed), shuffle_(shuffle) {
  if (n <= 0) throw std::invalid_argument("EpochSampler: need at least one example");
}

std::vector<int64_t> EpochSampler::epoch_order(int64_t epoch) const {
  std::vector<int64_t> p(static_cast<size_t>(n_));
  std::iota(p.begin(), p.end(), int64_t{0});
  if (!shuffle_) return p;
  SplitMix rng(derive_seed(seed_, {0x5A3D1E7ull, static_cast<uint64_t>(epoch)}));
  for (int64_t i = n_ - 1; i > 0; --i)
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  return p;
}

std::shared_ptr<const std::vector<int64_t>> EpochSampler::order(int64_t epoch) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int s = 0; s < 2; ++s)
      if (cached_epoch_[s] == epoch) return cached_[s];
  }
  auto p = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));  // computed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  cached_epoch_[next_slot_] = epoch;
  cached_[next_slot_] = p;
  next_slot_ ^= 1;
  return p;
}

int64_t EpochSampler::at(int64_t g) const {
  if (g < 0) throw std::invalid_argument("EpochSampler::at: negative position " + std::to_string(g));
  if (!shuffle_) return g % n_;
  return (*order(g / n_))[static_cast<size_t>(g % n_)];
}

}  // namespace nfscale::data
