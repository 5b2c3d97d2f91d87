// eval_schedule.cpp - the evaluation schedule of a training run (see eval_schedule.h).
#include "nfscale/train/eval_schedule.h"

namespace nfscale::train {

bool EvalSchedule::due(int64_t step) const {
  if (step == total_) return true;
  if (every_ > 0 && step % every_ == 0) return true;
  for (int64_t k = 1; k < points_; ++k)
    if (step == (total_ * k) / points_) return true;
  return false;
}

}  // namespace nfscale::train
