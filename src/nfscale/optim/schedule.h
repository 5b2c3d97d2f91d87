// schedule.h - learning-rate schedule and step budgets: LR scaling by batch size, fractional epoch budgets in
// steps, and linear warm-up followed by cosine decay that reaches exactly 0 at the last step. No LibTorch needed.
#pragma once
#include <cstdint>

namespace nfscale::optim {

// Reference LR scaling: base * batch / 256 (0.1 at batch 4096 gives 1.6). Throws UserError on batch <= 0.
double scaled_lr(double base_lr, int64_t batch);

// Number of examples in a (fractional) epoch budget: epochs * n_examples, rounded to the nearest integer when it
// is within 1e-9 relative of one (so 0.25 * 60000 is exactly 15000 despite binary floating point), else rounded
// up. Throws UserError on epochs <= 0 (or non-finite) or n_examples <= 0.
int64_t examples_for_budget(double epochs, int64_t n_examples);

// Optimiser steps for an epoch budget: ceil(examples_for_budget(epochs, N) / batch), computed in integers.
int64_t steps_for_budget(double epochs, int64_t n_examples, int64_t batch);

// Warm-up length in (possibly fractional) steps for a warm-up given in epochs: epochs * N / batch, as the official
// code (5 * images_per_epoch / batch). Throws UserError on negative epochs.
double warmup_steps_for_epochs(double warmup_epochs, int64_t n_examples, int64_t batch);

// Linear warm-up from 0 to `peak` over W steps, then cosine decay to 0 ending exactly at the last step T-1:
//   lr(t) = peak * t / W                                      for t <= W (W > 0)
//   lr(t) = peak * 0.5 * (1 + cos(pi * (t - W) / (T - 1 - W)))  for t > W
// (the official WarmupCosineDecay with start 0 and min 0, except that the decay ends at T-1 instead of T so the
// last step's LR is exactly 0). W is clamped to [0, T-2] so at least one decay step follows the warm-up; with
// T == 1 the single step uses `peak`. t is the 0-based index of the optimiser step about to be taken.
class WarmupCosine {
 public:
  // Throws UserError if total_steps < 1, peak is not finite or negative, or warmup_steps is negative/non-finite.
  WarmupCosine(double peak_lr, int64_t total_steps, double warmup_steps = 0.0);
  double operator()(int64_t step) const;
  double peak() const { return peak_; }
  int64_t total_steps() const { return total_; }
  double warmup_steps() const { return warmup_; }  // after clamping

 private:
  double peak_;
  int64_t total_;
  double warmup_;
};

}  // namespace nfscale::optim
