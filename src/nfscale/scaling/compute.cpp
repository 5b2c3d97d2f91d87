// compute.cpp - training-compute accounting and unit conversions (see compute.h for the convention).
#include "nfscale/scaling/compute.h"

#include <cmath>
#include <string>

#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

void require_positive(double v, const char* field, const char* fix) {
  require(std::isfinite(v) && v > 0,
          std::string(field) + " must be a positive finite number, got " + std::to_string(v) + "; " + fix);
}
void require_non_negative(double v, const char* field, const char* fix) {
  require(std::isfinite(v) && v >= 0,
          std::string(field) + " must be a non-negative finite number, got " + std::to_string(v) + "; " + fix);
}

}  // namespace

double TpuV4Convention::effective_flops_per_core() const {
  require_positive(peak_flops_per_core, "TPU-v4 peak_flops_per_core", "use e.g. 137.5e12 (half a 275 TFLOP/s chip)");
  require(std::isfinite(utilisation) && utilisation > 0 && utilisation <= 1,
          "TPU-v4 utilisation must be in (0, 1], got " + std::to_string(utilisation) + "; the default is 0.4");
  return peak_flops_per_core * utilisation;
}

double training_flops_per_example(double forward_macs_per_image) {
  require_positive(forward_macs_per_image, "forward MACs per image", "count the model's forward multiply-adds");
  return forward_macs_per_image * kFlopsPerMac * kTrainFlopsPerForward;
}

double training_flops(double forward_macs_per_image, double images) {
  require_non_negative(images, "images processed", "pass epochs x dataset size");
  return training_flops_per_example(forward_macs_per_image) * images;
}

double flops_to_tpu_v4_core_hours(double flops, const TpuV4Convention& tpu) {
  require_non_negative(flops, "FLOPs", "pass the training compute in FLOPs");
  return flops / tpu.effective_flops_per_core() / 3600.0;
}

double tpu_v4_core_hours_to_flops(double core_hours, const TpuV4Convention& tpu) {
  require_non_negative(core_hours, "TPU-v4 core-hours", "pass the budget in core-hours");
  return core_hours * 3600.0 * tpu.effective_flops_per_core();
}

double flops_to_local_seconds(double flops, double measured_flops_per_second) {
  require_non_negative(flops, "FLOPs", "pass the training compute in FLOPs");
  require_positive(measured_flops_per_second, "measured FLOP/s", "measure training throughput on this machine first");
  return flops / measured_flops_per_second;
}

double local_seconds_to_flops(double seconds, double measured_flops_per_second) {
  require_non_negative(seconds, "seconds", "pass the budget in seconds");
  require_positive(measured_flops_per_second, "measured FLOP/s", "measure training throughput on this machine first");
  return seconds * measured_flops_per_second;
}

}  // namespace nfscale::scaling
