// eval_schedule.h - when a training run evaluates: every `eval_every` steps, at `eval_points` evenly spaced steps,
// and always at the last step.
#pragma once
#include <cstdint>

namespace nfscale::train {

class EvalSchedule {
 public:
  EvalSchedule(int64_t total_steps, int64_t eval_every, int64_t eval_points)
      : total_(total_steps), every_(eval_every), points_(eval_points) {}
  // `step` = optimiser steps completed: true at total_steps, at multiples of eval_every (> 0), and at
  // floor(total_steps * k / eval_points) for k = 1 .. eval_points-1.
  bool due(int64_t step) const;

 private:
  int64_t total_, every_, points_;
};

}  // namespace nfscale::train
