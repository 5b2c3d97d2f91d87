// transforms.h - per-example image transforms on planar uint8 Images: random-resized (Inception) crop, bilinear
// resampling (align_corners=false, like torch's interpolate), resize + centre crop for evaluation, horizontal flip,
// normalisation into float [C,R,R], and the AugmentConfig that drives the whole per-example pipeline.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/data/image.h"
#include "nfscale/util/rng.h"

namespace nfscale::data {

// All knobs of augmentation. Defaults follow the official NFNet ImageNet recipe (reference.md) with F0's
// RandAugment (4 layers, magnitude 5); callers pass per-model values.
struct AugmentConfig {
  // Train-time geometry.
  bool random_resized_crop = true;  // false: resize + centre crop (as in eval) before flip/RandAugment
  double area_min = 0.08, area_max = 1.0;          // fraction of the image area
  double aspect_min = 3.0 / 4.0, aspect_max = 4.0 / 3.0;
  bool flip = true;                                 // horizontal, probability 0.5
  // RandAugment (layers = 0 disables). Magnitude on the 0..10 scale of the TF reference (values >10 allowed).
  int randaug_layers = 4;
  double randaug_magnitude = 5.0;
  int fill = 128;                                   // value for pixels uncovered by rotate/shear/translate
  // Batch mixing: both > 0 -> MixUp on the first half of the batch and CutMix on the second half; one > 0 -> that
  // one on the whole batch; both 0 -> none. Partner of a row is the reversed order within its part.
  double mixup_alpha = 0.2;
  double cutmix_alpha = 1.0;
  double label_smoothing = 0.1;
  // Evaluation: resize the shorter side to round(R / eval_crop_fraction), then centre-crop R x R.
  double eval_crop_fraction = 1.0;
  // Normalisation on the 0..1 scale, per output channel (one value is broadcast). Empty -> ImageNet statistics.
  std::vector<double> mean, std;
};

// Throws UserError naming the field if a value is out of range.
void validate(const AugmentConfig& config, const std::string& where = "augment");

// A crop box in source pixel units (may be fractional).
struct CropBox {
  double top = 0, left = 0, height = 0, width = 0;
};

// Inception-style crop box (torchvision's algorithm): 10 tries of area ~ U(area range) and log-uniform aspect;
// fallback to the centre crop with the aspect clamped to the range.
CropBox random_resized_crop_box(int64_t height, int64_t width, const AugmentConfig& config, SplitMix& rng);

// Evaluation box: the centre R x R window of the image resized (shorter side -> round(R / crop_fraction)).
CropBox center_crop_box(int64_t height, int64_t width, int64_t resolution, double crop_fraction);

// Bilinear resample of `box` to out_h x out_w; source coordinate of output pixel y is
// top + (y + 0.5) * box.height / out_h - 0.5, clamped into the image (as torch interpolate, align_corners=false).
Image resample_bilinear(const Image& src, const CropBox& box, int64_t out_h, int64_t out_w);
Image resize_bilinear(const Image& src, int64_t out_h, int64_t out_w);  // whole image
Image center_crop(const Image& src, int64_t out_h, int64_t out_w);      // integer offsets (h - out_h) / 2
void flip_horizontal(Image& image);

// Writes (pixel / 255 - mean[c]) / std[c] into out [C,H,W] (C = image.channels).
void normalize_into(const Image& image, const std::vector<double>& mean, const std::vector<double>& std, float* out);

// The whole per-example pipeline, a pure function of its arguments: channel conversion to out_channels, then
// train: crop box (random-resized or centre) -> resample to R x R -> flip -> RandAugment; eval: resize + centre crop.
// Then normalisation into out [out_channels, R, R]. All random decisions come from SplitMix(example_seed).
void transform_example(const Image& src, const AugmentConfig& config, int64_t resolution, int64_t out_channels,
                       bool train, uint64_t example_seed, float* out);

}  // namespace nfscale::data
