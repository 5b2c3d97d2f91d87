// pixel_match.cpp - area-resampled luma thumbnails and the shift-tolerant correlation check (see pixel_match.h).
#include "nfscale/data/pixel_match.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "nfscale/util/error.h"

namespace nfscale::data {
namespace {

// Area-resampling kernel of one axis, src -> dst cells: output j = sum_k w[j][k] * in[first[j] + k], where
// output cell j covers the source interval [j*src/dst, (j+1)*src/dst) and each source pixel is weighted by its
// overlap. Sparse (a cell touches ceil(src/dst) + 1 pixels at most), so resampling costs O(h*W + h*w) taps.
struct AxisKernel {
  std::vector<int64_t> first;
  std::vector<std::vector<double>> w;
};

AxisKernel area_kernel(int64_t src, int64_t dst) {
  AxisKernel k;
  k.first.resize(static_cast<size_t>(dst));
  k.w.resize(static_cast<size_t>(dst));
  const double scale = static_cast<double>(src) / dst;
  for (int64_t j = 0; j < dst; ++j) {
    const double lo = j * scale, hi = (j + 1) * scale;
    const int64_t i0 = static_cast<int64_t>(std::floor(lo));
    k.first[static_cast<size_t>(j)] = i0;
    for (int64_t i = i0; i < src && i < hi; ++i) {
      const double overlap = std::min(hi, i + 1.0) - std::max(lo, static_cast<double>(i));
      k.w[static_cast<size_t>(j)].push_back(overlap > 0 ? overlap / scale : 0.0);
    }
  }
  return k;
}

// Sum of the integral image `s` [(S+1) x (S+1)] over rows [y0, y1) and columns [x0, x1).
double rect(const std::vector<double>& s, int S, int y0, int x0, int y1, int x1) {
  const int W = S + 1;
  return s[static_cast<size_t>(y1 * W + x1)] - s[static_cast<size_t>(y0 * W + x1)] -
         s[static_cast<size_t>(y1 * W + x0)] + s[static_cast<size_t>(y0 * W + x0)];
}

// Integral images of v and v^2, each [(S+1) x (S+1)] with a zero first row and column.
void integrals(const float* v, int S, std::vector<double>& sum, std::vector<double>& sq) {
  const int W = S + 1;
  sum.assign(static_cast<size_t>(W * W), 0.0);
  sq.assign(static_cast<size_t>(W * W), 0.0);
  for (int y = 0; y < S; ++y) {
    double row = 0, row2 = 0;
    for (int x = 0; x < S; ++x) {
      const double p = v[y * S + x];
      row += p;
      row2 += p * p;
      sum[static_cast<size_t>((y + 1) * W + x + 1)] = sum[static_cast<size_t>(y * W + x + 1)] + row;
      sq[static_cast<size_t>((y + 1) * W + x + 1)] = sq[static_cast<size_t>(y * W + x + 1)] + row2;
    }
  }
}

constexpr int kMaxSize = 64;
constexpr double kFlatVariance = 1e-4;  // grey levels^2 per pixel

}  // namespace

std::vector<double> luma_resampled(const Image& image, int64_t h, int64_t w) {
  require(!image.empty() && image.height > 0 && image.width > 0, "perceptual hash: the image is empty");
  require(image.channels >= 1 && image.channels <= 4,
          "perceptual hash: images with " + std::to_string(image.channels) + " channels are not supported (1-4)");
  const Image* grey = &image;
  Image converted;
  if (image.channels != 1) {
    converted = image.channels == 4 ? convert_channels(image, 3) : image;  // RGBA: drop alpha, then luma
    converted = convert_channels(converted, 1);
    grey = &converted;
  }
  const int64_t H = grey->height, W = grey->width;
  const AxisKernel ky = area_kernel(H, h), kx = area_kernel(W, w);
  const uint8_t* px = grey->plane(0);
  std::vector<double> rows(static_cast<size_t>(h * W), 0.0);  // [h x W]: rows resampled
  for (int64_t y = 0; y < h; ++y) {
    double* out = rows.data() + y * W;
    const auto& wy = ky.w[static_cast<size_t>(y)];
    for (size_t k = 0; k < wy.size(); ++k) {
      const uint8_t* in = px + (ky.first[static_cast<size_t>(y)] + static_cast<int64_t>(k)) * W;
      for (int64_t x = 0; x < W; ++x) out[x] += wy[k] * in[x];
    }
  }
  std::vector<double> out(static_cast<size_t>(h * w), 0.0);  // [h x w]
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const auto& wx = kx.w[static_cast<size_t>(x)];
      const double* in = rows.data() + y * W + kx.first[static_cast<size_t>(x)];
      double s = 0;
      for (size_t k = 0; k < wx.size(); ++k) s += wx[k] * in[k];
      out[static_cast<size_t>(y * w + x)] = s;
    }
  return out;
}

std::vector<float> thumbnail(const Image& image, int size) {
  std::vector<double> v = luma_resampled(image, size, size);
  return std::vector<float>(v.begin(), v.end());
}

std::vector<uint8_t> thumbnail_u8(const Image& image, int size) {
  std::vector<double> v = luma_resampled(image, size, size);
  std::vector<uint8_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<uint8_t>(std::clamp(std::lround(v[i]), 0L, 255L));
  return out;
}

PixelMatch match_pixels(const float* a_raw, const float* b_raw, int S, int max_shift, double max_mean_abs_diff,
                        int block) {
  require(S >= 1 && S <= kMaxSize, "pixel match: thumbnail size " + std::to_string(S) + " outside 1..64");
  require(max_shift >= 0 && max_shift < S,
          "pixel match: shift " + std::to_string(max_shift) + " must be in [0, " + std::to_string(S) + ")");
  const int n_px = S * S;
  // Centred copies (each minus its own mean): correlation is unchanged and the float sums below stay small.
  double mean_a = 0, mean_b = 0;
  for (int i = 0; i < n_px; ++i) {
    mean_a += a_raw[i];
    mean_b += b_raw[i];
  }
  mean_a /= n_px;
  mean_b /= n_px;
  float a[kMaxSize * kMaxSize], b[kMaxSize * kMaxSize];  // [S x S] each
  for (int i = 0; i < n_px; ++i) {
    a[i] = static_cast<float>(a_raw[i] - mean_a);
    b[i] = static_cast<float>(b_raw[i] - mean_b);
  }
  thread_local std::vector<double> sa, sa2, sb, sb2;  // integral images [(S+1) x (S+1)], reused across calls
  integrals(a, S, sa, sa2);
  integrals(b, S, sb, sb2);

  PixelMatch best;
  best.correlation = -2;
  double lowest_bound = 256;
  for (int dy = -max_shift; dy <= max_shift; ++dy)
    for (int dx = -max_shift; dx <= max_shift; ++dx) {
      // Overlap: a rows [y0, y1), columns [x0, x1); b the same shifted by (dy, dx).
      const int y0 = std::max(0, -dy), y1 = std::min(S, S - dy), x0 = std::max(0, -dx), x1 = std::min(S, S - dx);
      const double n = static_cast<double>((y1 - y0) * (x1 - x0));
      const double ma = rect(sa, S, y0, x0, y1, x1), mb = rect(sb, S, y0 + dy, x0 + dx, y1 + dy, x1 + dx);
      const double bound = std::fabs(ma / n + mean_a - mb / n - mean_b);  // <= mean |a - b| over the overlap
      lowest_bound = std::min(lowest_bound, bound);
      if (bound > max_mean_abs_diff) continue;
      float col[kMaxSize] = {};  // per-column partial sums of a*b: an element-wise loop the compiler vectorises
      for (int y = y0; y < y1; ++y) {
        const float* pa = a + y * S;
        const float* pb = b + (y + dy) * S + dx;
        for (int x = x0; x < x1; ++x) col[x] += pa[x] * pb[x];
      }
      double sab = 0;
      for (int x = x0; x < x1; ++x) sab += col[x];
      const double va = rect(sa2, S, y0, x0, y1, x1) - ma * ma / n;
      const double vb = rect(sb2, S, y0 + dy, x0 + dx, y1 + dy, x1 + dx) - mb * mb / n;
      const bool flat_a = va < kFlatVariance * n, flat_b = vb < kFlatVariance * n;
      double r;
      if (flat_a || flat_b)
        r = flat_a && flat_b ? 1.0 : 0.0;
      else
        r = std::clamp((sab - ma * mb / n) / std::sqrt(va * vb), -1.0, 1.0);
      if (r > best.correlation) {
        best.correlation = r;
        best.dx = dx;
        best.dy = dy;
      }
    }
  if (best.correlation < -1.5) {  // no shift passed the mean bound
    best.correlation = -1;
    best.mean_abs_diff = lowest_bound;
    return best;
  }
  // Mean absolute difference of the raw values at the best shift.
  const int dy = best.dy, dx = best.dx;
  const int y0 = std::max(0, -dy), y1 = std::min(S, S - dy), x0 = std::max(0, -dx), x1 = std::min(S, S - dx);
  double mad = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) mad += std::fabs(a_raw[y * S + x] - b_raw[(y + dy) * S + x + dx]);
  best.mean_abs_diff = mad / ((y1 - y0) * (x1 - x0));
  if (block > 0) {
    // Largest |mean(a - b)| over the block x block windows of the overlap (integral image of the signed difference):
    // noise averages out in a window, a local difference (another print, a displaced edge) does not.
    const int h = y1 - y0, w = x1 - x0, by = std::min(block, h), bx = std::min(block, w);
    thread_local std::vector<double> ds;
    ds.assign(static_cast<size_t>((h + 1) * (w + 1)), 0.0);  // [(h+1) x (w+1)]
    for (int y = 0; y < h; ++y) {
      double row = 0;
      for (int x = 0; x < w; ++x) {
        row += a_raw[(y + y0) * S + x + x0] - b_raw[(y + y0 + dy) * S + x + x0 + dx];
        ds[static_cast<size_t>((y + 1) * (w + 1) + x + 1)] = ds[static_cast<size_t>(y * (w + 1) + x + 1)] + row;
      }
    }
    double worst = 0;
    for (int y = 0; y + by <= h; ++y)
      for (int x = 0; x + bx <= w; ++x) {
        const double sum = ds[static_cast<size_t>((y + by) * (w + 1) + x + bx)] - ds[static_cast<size_t>(y * (w + 1) + x + bx)] -
                           ds[static_cast<size_t>((y + by) * (w + 1) + x)] + ds[static_cast<size_t>(y * (w + 1) + x)];
        worst = std::max(worst, std::fabs(sum));
      }
    best.max_block_diff = worst / (by * bx);
  }
  return best;
}

}  // namespace nfscale::data
