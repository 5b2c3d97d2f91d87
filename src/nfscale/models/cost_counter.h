// cost_counter.h - thread-local "counting mode": while a CountingScope is alive on a thread, the model's
// convolutions and linears add their multiply-accumulates (MACs) to a counter and return an uninitialised
// tensor of the right shape on the `meta` device instead of computing, so a batch-1 forward of even F7 at
// 608 px costs microseconds. Used by count_cost() (registry.h); ordinary forwards never see it.
#pragma once
#include <cstdint>

namespace nfscale::models {

// Accumulates MACs of one counted forward (batch 1).
struct CostCounter {
  int64_t macs = 0;
};

// RAII: enables counting mode on this thread for its lifetime (nesting restores the outer counter).
class CountingScope {
 public:
  explicit CountingScope(CostCounter& counter);
  ~CountingScope();
  CountingScope(const CountingScope&) = delete;
  CountingScope& operator=(const CountingScope&) = delete;

 private:
  CostCounter* previous_;
};

// The active counter of this thread, or nullptr when not counting.
CostCounter* active_counter();

}  // namespace nfscale::models
