// compute.h - training-compute accounting: FLOPs from counted forward MACs, and conversions between FLOPs,
// equivalent TPU-v4 core-hours (the paper's x-axis) and seconds on this machine.
//
// Convention (see docs/scaling.md):
//   training FLOPs = forward MACs per image x 2 FLOP/MAC x 3 (backward costs 2x forward) x images processed.
//   TPU-v4 core-hours = FLOPs / (peak FLOP/s per core x utilisation) / 3600, with the peak of one TPU-v4 core
//   taken as half a chip's ~275 bf16 TFLOP/s (137.5e12) and a default utilisation of 0.4 (configurable).
#pragma once

namespace nfscale::scaling {

constexpr double kFlopsPerMac = 2.0;             // one multiply-add = 2 FLOPs
constexpr double kTrainFlopsPerForward = 3.0;    // forward + backward (2x forward) = 3x forward
constexpr double kTpuV4ChipPeakFlops = 275e12;   // bf16 peak FLOP/s of one TPU-v4 chip
constexpr double kTpuV4CoresPerChip = 2.0;
constexpr double kTpuV4CorePeakFlops = kTpuV4ChipPeakFlops / kTpuV4CoresPerChip;  // 137.5e12
constexpr double kDefaultTpuUtilisation = 0.4;   // assumed model-FLOP utilisation of a TPU-v4 training job

// How FLOPs map to TPU-v4 core-hours.
struct TpuV4Convention {
  double peak_flops_per_core = kTpuV4CorePeakFlops;
  double utilisation = kDefaultTpuUtilisation;  // in (0, 1]
  // Sustained FLOP/s of one core = peak x utilisation. Throws UserError if either field is invalid.
  double effective_flops_per_core() const;
};

// Training FLOPs per example: forward MACs x 2 x 3. Throws UserError unless macs > 0 and finite.
double training_flops_per_example(double forward_macs_per_image);
// Training FLOPs for `images` processed (images >= 0).
double training_flops(double forward_macs_per_image, double images);

double flops_to_tpu_v4_core_hours(double flops, const TpuV4Convention& tpu = {});
double tpu_v4_core_hours_to_flops(double core_hours, const TpuV4Convention& tpu = {});

// Wall-clock seconds on this machine given a measured sustained training FLOP/s, and back.
double flops_to_local_seconds(double flops, double measured_flops_per_second);
double local_seconds_to_flops(double seconds, double measured_flops_per_second);

}  // namespace nfscale::scaling
