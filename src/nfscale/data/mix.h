// mix.h - batch-level target construction and mixing on raw float buffers: label smoothing, MixUp (Beta(alpha)
// ratio, pixel blend) and CutMix (Beta(alpha) ratio, pasted box; ratio corrected to the clipped box area).
// Every row's soft target sums to 1.
#pragma once
#include <cstdint>

#include "nfscale/util/rng.h"

namespace nfscale::data {

// Beta(a, a) sample from a counter-based stream (Marsaglia-Tsang gamma; a < 1 via the U^(1/a) boost).
double sample_beta(double a, double b, SplitMix& rng);

// targets [B,K] <- smoothed one-hot: (1 - s) * onehot(labels) + s / K.
void smooth_targets(const int64_t* labels, int64_t batch, int64_t classes, double smoothing, float* targets);

// Mixes rows [begin, end) of images [B,C,H,W] / targets [B,K], row r with partner begin + end - 1 - r (reversed
// order), using one ratio lam for the group. MixUp: x = lam x + (1 - lam) x_p. CutMix: a box of area ~(1 - lam)
// from the partner; lam is then set to 1 - box_area / (H W). Returns the lam used. Reads partner rows from a copy,
// so the operation is symmetric and order-independent.
double mixup_rows(float* images, float* targets, int64_t begin, int64_t end, int64_t image_size, int64_t classes,
                  double alpha, SplitMix& rng);
double cutmix_rows(float* images, float* targets, int64_t begin, int64_t end, int64_t channels, int64_t height,
                   int64_t width, int64_t classes, double alpha, SplitMix& rng);

}  // namespace nfscale::data
