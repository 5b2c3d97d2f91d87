// pixel_match.h - the pixel-level confirmation of near-duplicate candidates: every image becomes a small grey
// thumbnail (luma, area-resampled to S x S), and two thumbnails match when their normalised cross-correlation,
// maximised over small shifts, is high and their mean absolute difference at that shift is small (docs/data.md).
// The perceptual hash (dedup.h) finds candidates cheaply; this check tells a copy from a look-alike.
#pragma once
#include <cstdint>
#include <vector>

#include "nfscale/data/image.h"

namespace nfscale::data {

// Luma (ITU-R 601; RGBA drops alpha) of `image` area-resampled to [h x w]: row-major, 0..255. Each output cell
// averages the source pixels it covers, weighted by overlap (a box filter shrinking, blending enlarging).
// Throws UserError for an empty image or more than 4 channels.
std::vector<double> luma_resampled(const Image& image, int64_t h, int64_t w);

// The thumbnail of the pixel check: luma_resampled(image, size, size) as floats [size x size], 0..255.
std::vector<float> thumbnail(const Image& image, int size);

// Rounded to uint8 (what Fingerprints stores: a quarter of the memory; the rounding, <= 0.5 grey level, is far
// below the check's tolerances).
std::vector<uint8_t> thumbnail_u8(const Image& image, int size);

struct PixelMatch {
  double correlation = 0;    // normalised cross-correlation at the best shift, in [-1, 1]; -1 if no shift was
                             // compared (every shift failed the mean bound below)
  double mean_abs_diff = 0;  // mean |a - b| over the overlap at that shift, grey levels (0..255); if no shift was
                             // compared, the smallest lower bound |mean(a) - mean(b)| over the shifts
  int dx = 0, dy = 0;        // the best shift: a(y, x) is compared with b(y + dy, x + dx)
  double max_block_diff = 0; // largest |mean(a - b)| over block x block windows at that shift (0 without block)
};

// Compares two thumbnails [size x size] over every shift |dx|, |dy| <= max_shift: for each shift, the
// correlation of the overlapping windows (each window zero-mean and unit-norm on its own), and keeps the shift
// with the largest one. Shifts whose overlap means differ by more than max_mean_abs_diff are skipped: that
// difference is a lower bound of the mean absolute difference, so they could not pass a check with that bound
// (it saves most of the work on look-alikes of another brightness). A window that is flat (variance below 1e-4
// grey levels^2 per pixel) correlates 1 with another flat window and 0 with anything else, so blank images are
// judged by the mean absolute difference. With block > 0 also the largest |mean(a - b)| over the block x block
// windows of the overlap at the best shift. Requires 1 <= size <= 64 and 0 <= max_shift < size.
PixelMatch match_pixels(const float* a, const float* b, int size, int max_shift, double max_mean_abs_diff = 256,
                        int block = 0);

}  // namespace nfscale::data
