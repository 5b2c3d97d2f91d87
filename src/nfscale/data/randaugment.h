// randaugment.h - RandAugment on planar uint8 Images (pure C++ loops): 14 ops (identity, autocontrast, equalize,
// rotate, solarize, color, contrast, brightness, sharpness, shear x/y, translate x/y, posterize). Each of `layers`
// rounds picks an op uniformly and applies it with probability ~U(0.2, 0.8) as in the TF reference
// (distort_image_with_randaugment). Strength grows with magnitude for every op (level = magnitude / 10):
//   rotate 30*level deg, shear 0.3*level, translate 0.45*level*size (random sign), solarize threshold 256*(1-level),
//   enhance factor 1 +/- 0.9*level (clamped to [0.1, 1.9]), posterize to 8 - round(4*level) bits (>= 1).
#pragma once
#include <string>

#include "nfscale/data/image.h"
#include "nfscale/util/rng.h"

namespace nfscale::data {

enum class RandOp {
  kIdentity, kAutoContrast, kEqualize, kRotate, kSolarize, kColor, kContrast, kBrightness, kSharpness,
  kShearX, kShearY, kTranslateX, kTranslateY, kPosterize, kCount
};
const char* rand_op_name(RandOp op);

// Applies one op at `magnitude`; `negate` flips the sign of signed ops (rotate, shear, translate, enhance).
void apply_rand_op(Image& image, RandOp op, double magnitude, bool negate, int fill);

// The RandAugment policy; every decision is drawn from `rng`.
void rand_augment(Image& image, int layers, double magnitude, int fill, SplitMix& rng);

}  // namespace nfscale::data
