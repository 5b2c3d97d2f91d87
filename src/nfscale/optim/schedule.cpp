// schedule.cpp - LR scaling, epoch budgets in steps, and the warm-up + cosine schedule.
#include "nfscale/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "nfscale/util/error.h"

namespace nfscale::optim {

double scaled_lr(double base_lr, int64_t batch) {
  require(batch > 0, "batch is " + std::to_string(batch) + "; it must be a positive number of examples");
  require(std::isfinite(base_lr), "lr is not finite; give a positive base learning rate (reference 0.1)");
  return base_lr * static_cast<double>(batch) / 256.0;
}

int64_t examples_for_budget(double epochs, int64_t n_examples) {
  require(std::isfinite(epochs) && epochs > 0,
          "epochs is " + std::to_string(epochs) + "; the epoch budget must be a positive number (e.g. 0.25)");
  require(n_examples > 0, "the training set has " + std::to_string(n_examples) +
                              " examples; it must have at least one (check the data spec)");
  const double x = epochs * static_cast<double>(n_examples);
  require(x < 9.0e15, "epochs * N = " + std::to_string(x) + " examples is too large to count exactly");
  const double r = std::nearbyint(x);
  if (std::fabs(x - r) <= 1e-9 * std::max(1.0, std::fabs(x))) return static_cast<int64_t>(r);
  return static_cast<int64_t>(std::ceil(x));
}

int64_t steps_for_budget(double epochs, int64_t n_examples, int64_t batch) {
  require(batch > 0, "batch is " + std::to_string(batch) + "; it must be a positive number of examples");
  const int64_t examples = examples_for_budget(epochs, n_examples);
  return (examples + batch - 1) / batch;
}

double warmup_steps_for_epochs(double warmup_epochs, int64_t n_examples, int64_t batch) {
  require(std::isfinite(warmup_epochs) && warmup_epochs >= 0,
          "warmup_epochs is " + std::to_string(warmup_epochs) + "; it must be >= 0");
  require(batch > 0, "batch is " + std::to_string(batch) + "; it must be a positive number of examples");
  require(n_examples > 0, "the training set has " + std::to_string(n_examples) + " examples; need at least one");
  return warmup_epochs * static_cast<double>(n_examples) / static_cast<double>(batch);
}

WarmupCosine::WarmupCosine(double peak_lr, int64_t total_steps, double warmup_steps)
    : peak_(peak_lr), total_(total_steps), warmup_(warmup_steps) {
  require(total_steps >= 1, "the schedule has " + std::to_string(total_steps) +
                                " steps; the budget must give at least one step (raise epochs or lower batch)");
  require(std::isfinite(peak_lr) && peak_lr >= 0,
          "lr is " + std::to_string(peak_lr) + "; the learning rate must be finite and >= 0");
  require(std::isfinite(warmup_steps) && warmup_steps >= 0,
          "warm-up is " + std::to_string(warmup_steps) + " steps; it must be finite and >= 0");
  warmup_ = std::min(warmup_, static_cast<double>(std::max<int64_t>(total_ - 2, 0)));
}

double WarmupCosine::operator()(int64_t step) const {
  if (total_ == 1) return peak_;
  const double t = static_cast<double>(std::clamp<int64_t>(step, 0, total_ - 1));
  if (warmup_ > 0 && t <= warmup_) return peak_ * (t / warmup_);
  const double progress = (t - warmup_) / (static_cast<double>(total_ - 1) - warmup_);  // in (0, 1]
  if (progress >= 1.0) return 0.0;  // exactly 0 at the last step (cos(pi) + 1 is not exactly 0 in floating point)
  return peak_ * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace nfscale::optim
