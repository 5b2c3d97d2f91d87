// synthetic_images.h - generated grey test images for the near-duplicate tests (data and train): smooth blobs,
// garment-like silhouettes with a texture (same silhouette + other texture = a look-alike that a perceptual hash
// matches), and the modifications a copy may have suffered: shifts, Gaussian noise, rescaling.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "nfscale/data/image.h"
#include "nfscale/util/rng.h"

namespace nfscale::data::testing {

inline double gauss(SplitMix& r) {
  double u1 = std::max(r.uniform(), 1e-300), u2 = r.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

// A grey image of a few random Gaussian blobs (smooth, like a centred clothing item).
inline Image blobs(uint64_t seed, int64_t size = 28) {
  SplitMix r(seed);
  Image img(1, size, size);
  struct Blob { double x, y, s, a; };
  std::vector<Blob> b;
  for (int k = 0; k < 4; ++k) b.push_back({r.uniform(0.2, 0.8), r.uniform(0.2, 0.8), r.uniform(0.08, 0.25), r.uniform(80, 255)});
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      double v = 0;
      for (auto& q : b) {
        double dx = (x + 0.5) / size - q.x, dy = (y + 0.5) / size - q.y;
        v += q.a * std::exp(-(dx * dx + dy * dy) / (2 * q.s * q.s));
      }
      img.at(0, y, x) = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  return img;
}

// A 28x28 garment on black, like Fashion-MNIST: a top (body, sleeves, neckline) whose proportions come from
// `shape_seed`, filled with a texture from `texture_seed`: a base grey, then stripes (horizontal or vertical, period
// 4-8 px) or a check pattern, plus a vertical shading gradient. The same shape with another texture is a distinct
// image of the same silhouette.
inline Image garment(uint64_t shape_seed, uint64_t texture_seed) {
  constexpr int64_t N = 28;
  SplitMix rs(shape_seed), rt(texture_seed ^ 0x7e7u);
  const double cx = 13.5 + rs.uniform(-0.5, 0.5), half_w = rs.uniform(5.5, 8), top = rs.uniform(3, 5.5),
               bottom = rs.uniform(23, 26), sleeve = rs.uniform(3, 6), drop = rs.uniform(6, 11),
               neck = rs.uniform(2, 3.5);
  const double base = rt.uniform(90, 210), amp = rt.uniform(35, 60), period = rt.uniform(4, 8),
               phase = rt.uniform(0, 2 * M_PI), shade = rt.uniform(-25, 25);
  const uint64_t kind = rt.below(3);
  Image img(1, N, N);
  for (int64_t y = 0; y < N; ++y)
    for (int64_t x = 0; x < N; ++x) {
      const double px = x + 0.5, py = y + 0.5, ax = std::fabs(px - cx);
      const bool body = ax <= half_w && py >= top && py <= bottom &&
                        (px - cx) * (px - cx) + (py - top) * (py - top) > neck * neck;
      const bool arm = py >= top && py <= top + drop && ax > half_w && ax <= half_w + sleeve * (1 - (py - top) / (2 * drop));
      if (!body && !arm) continue;
      double t;
      if (kind == 0) t = std::sin(2 * M_PI * py / period + phase);
      else if (kind == 1) t = std::sin(2 * M_PI * px / period + phase);
      else t = std::sin(2 * M_PI * px / period + phase) * std::sin(2 * M_PI * py / period + phase);
      const double v = base + amp * t + shade * (py - 14) / 14;
      img.at(0, y, x) = static_cast<uint8_t>(std::clamp(std::lround(v), 10L, 255L));
    }
  return img;
}

// Shifted by (dx, dy) pixels; uncovered pixels take `fill` (edge pixels repeated when fill < 0).
inline Image shifted(const Image& src, int dx, int dy, int fill = -1) {
  Image out(1, src.height, src.width);
  for (int64_t y = 0; y < src.height; ++y)
    for (int64_t x = 0; x < src.width; ++x) {
      const int64_t sy = y - dy, sx = x - dx;
      const bool inside = sy >= 0 && sy < src.height && sx >= 0 && sx < src.width;
      out.at(0, y, x) = inside || fill < 0 ? src.at(0, std::clamp<int64_t>(sy, 0, src.height - 1),
                                                    std::clamp<int64_t>(sx, 0, src.width - 1))
                                           : static_cast<uint8_t>(fill);
    }
  return out;
}

// Gaussian noise of standard deviation sd grey levels, clamped to 0..255 and truncated.
inline Image noised(const Image& src, double sd, uint64_t seed) {
  SplitMix r(seed);
  Image out = src;
  for (auto& p : out.pixels) p = static_cast<uint8_t>(std::clamp(p + sd * gauss(r), 0.0, 255.0));
  return out;
}

// Bilinear resize to size x size (align_corners = false).
inline Image rescaled(const Image& src, int64_t size) {
  Image out(1, size, size);
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      double sy = std::clamp((y + 0.5) * src.height / size - 0.5, 0.0, src.height - 1.0);
      double sx = std::clamp((x + 0.5) * src.width / size - 0.5, 0.0, src.width - 1.0);
      int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
      int64_t y1 = std::min(y0 + 1, src.height - 1), x1 = std::min(x0 + 1, src.width - 1);
      double fy = sy - y0, fx = sx - x0;
      double v = (1 - fy) * ((1 - fx) * src.at(0, y0, x0) + fx * src.at(0, y0, x1)) +
                 fy * ((1 - fx) * src.at(0, y1, x0) + fx * src.at(0, y1, x1));
      out.at(0, y, x) = static_cast<uint8_t>(std::lround(v));
    }
  return out;
}

// Content scaled by `factor` about the centre inside the same frame (bilinear; outside the source: black).
inline Image zoomed(const Image& src, double factor) {
  Image out(1, src.height, src.width);
  const double cy = src.height / 2.0, cx = src.width / 2.0;
  for (int64_t y = 0; y < src.height; ++y)
    for (int64_t x = 0; x < src.width; ++x) {
      const double sy = (y + 0.5 - cy) / factor + cy - 0.5, sx = (x + 0.5 - cx) / factor + cx - 0.5;
      auto px = [&](int64_t yy, int64_t xx) -> double {
        return yy < 0 || yy >= src.height || xx < 0 || xx >= src.width ? 0.0 : src.at(0, yy, xx);
      };
      const int64_t y0 = static_cast<int64_t>(std::floor(sy)), x0 = static_cast<int64_t>(std::floor(sx));
      const double fy = sy - y0, fx = sx - x0;
      const double v = (1 - fy) * ((1 - fx) * px(y0, x0) + fx * px(y0, x0 + 1)) +
                       fy * ((1 - fx) * px(y0 + 1, x0) + fx * px(y0 + 1, x0 + 1));
      out.at(0, y, x) = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  return out;
}

}  // namespace nfscale::data::testing
