// randaugment.cpp - the RandAugment ops as loops over uint8 planes (images here are small: 28..64 px).
#include "nfscale/data/randaugment.h"

#include <algorithm>
#include <cmath>

namespace nfscale::data {
namespace {

uint8_t clamp_u8(float v) { return static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v + 0.5f))); }

// Inverse-mapped affine transform, nearest neighbour, about the image centre:
// src - c = [a b; d e] (dst - c) + [tx ty]. Pixels mapped outside get `fill`.
void affine(Image& img, double a, double b, double d, double e, double tx, double ty, int fill) {
  Image out(img.channels, img.height, img.width, static_cast<uint8_t>(fill));
  const double cx = (img.width - 1) / 2.0, cy = (img.height - 1) / 2.0;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x) {
      const double dx = x - cx, dy = y - cy;
      const int64_t sx = std::llround(a * dx + b * dy + cx + tx);
      const int64_t sy = std::llround(d * dx + e * dy + cy + ty);
      if (sx < 0 || sy < 0 || sx >= img.width || sy >= img.height) continue;
      for (int64_t c = 0; c < img.channels; ++c) out.at(c, y, x) = img.at(c, sy, sx);
    }
  img = std::move(out);
}

// out = degenerate + factor * (img - degenerate), per pixel.
void blend(Image& img, const Image& degenerate, double factor) {
  const float f = static_cast<float>(factor);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    const float d = degenerate.pixels[i];
    img.pixels[i] = clamp_u8(d + f * (static_cast<float>(img.pixels[i]) - d));
  }
}

Image grey_like(const Image& img) {  // PIL "L" conversion, replicated back to img.channels
  if (img.channels < 3) return img;
  Image out(img.channels, img.height, img.width);
  const int64_t hw = img.height * img.width;
  for (int64_t i = 0; i < hw; ++i) {
    const int v = (299 * img.plane(0)[i] + 587 * img.plane(1)[i] + 114 * img.plane(2)[i] + 500) / 1000;
    for (int64_t c = 0; c < img.channels; ++c) out.plane(c)[i] = static_cast<uint8_t>(v);
  }
  return out;
}

void autocontrast(Image& img) {
  const int64_t hw = img.height * img.width;
  for (int64_t c = 0; c < img.channels; ++c) {
    uint8_t* p = img.plane(c);
    const auto [lo, hi] = std::minmax_element(p, p + hw);
    const int l = *lo, h = *hi;
    if (h <= l) continue;
    const float scale = 255.0f / static_cast<float>(h - l);
    for (int64_t i = 0; i < hw; ++i) p[i] = clamp_u8((p[i] - l) * scale);
  }
}

void equalize(Image& img) {  // PIL ImageOps.equalize, per channel
  const int64_t hw = img.height * img.width;
  for (int64_t c = 0; c < img.channels; ++c) {
    uint8_t* p = img.plane(c);
    int64_t hist[256] = {0};
    for (int64_t i = 0; i < hw; ++i) ++hist[p[i]];
    int64_t last = 255;
    while (last > 0 && hist[last] == 0) --last;
    const int64_t step = (hw - hist[last]) / 255;
    if (step == 0) continue;
    uint8_t lut[256];
    int64_t n = step / 2;
    for (int v = 0; v < 256; ++v) {
      lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, n / step));
      n += hist[v];
    }
    for (int64_t i = 0; i < hw; ++i) p[i] = lut[p[i]];
  }
}

void sharpness(Image& img, double factor) {  // blend with the PIL SMOOTH-filtered image (border unchanged)
  Image smooth = img;
  for (int64_t c = 0; c < img.channels; ++c)
    for (int64_t y = 1; y + 1 < img.height; ++y)
      for (int64_t x = 1; x + 1 < img.width; ++x) {
        int s = 4 * img.at(c, y, x);
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) s += img.at(c, y + dy, x + dx);
        smooth.at(c, y, x) = static_cast<uint8_t>((s + 6) / 13);
      }
  blend(img, smooth, factor);
}

}  // namespace

const char* rand_op_name(RandOp op) {
  static const char* names[] = {"identity", "autocontrast", "equalize", "rotate", "solarize", "color", "contrast",
                                "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y",
                                "posterize"};
  return op < RandOp::kCount ? names[static_cast<int>(op)] : "?";
}

void apply_rand_op(Image& img, RandOp op, double magnitude, bool negate, int fill) {
  const double level = magnitude / 10.0, sign = negate ? -1.0 : 1.0;
  const double enhance = std::min(1.9, std::max(0.1, 1.0 + sign * 0.9 * level));
  switch (op) {
    case RandOp::kIdentity: break;
    case RandOp::kAutoContrast: autocontrast(img); break;
    case RandOp::kEqualize: equalize(img); break;
    case RandOp::kRotate: {
      const double t = sign * 30.0 * level * M_PI / 180.0;  // counter-clockwise for positive angles
      affine(img, std::cos(t), -std::sin(t), std::sin(t), std::cos(t), 0, 0, fill);
      break;
    }
    case RandOp::kSolarize: {
      const int threshold = static_cast<int>(256.0 * (1.0 - std::min(1.0, level)));
      for (auto& v : img.pixels) v = v >= threshold ? static_cast<uint8_t>(255 - v) : v;
      break;
    }
    case RandOp::kColor: blend(img, grey_like(img), enhance); break;
    case RandOp::kContrast: {
      const Image g = grey_like(img);
      double mean = 0;
      const int64_t hw = img.height * img.width;
      for (int64_t i = 0; i < hw; ++i) mean += g.pixels[static_cast<size_t>(i)];
      Image degenerate(img.channels, img.height, img.width, static_cast<uint8_t>(std::lround(mean / double(hw))));
      blend(img, degenerate, enhance);
      break;
    }
    case RandOp::kBrightness: blend(img, Image(img.channels, img.height, img.width, 0), enhance); break;
    case RandOp::kSharpness: sharpness(img, enhance); break;
    case RandOp::kShearX: affine(img, 1, sign * 0.3 * level, 0, 1, 0, 0, fill); break;
    case RandOp::kShearY: affine(img, 1, 0, sign * 0.3 * level, 1, 0, 0, fill); break;
    case RandOp::kTranslateX: affine(img, 1, 0, 0, 1, -sign * 0.45 * level * img.width, 0, fill); break;
    case RandOp::kTranslateY: affine(img, 1, 0, 0, 1, 0, -sign * 0.45 * level * img.height, fill); break;
    case RandOp::kPosterize: {
      const int bits = std::max(1, std::min(8, 8 - static_cast<int>(std::lround(4.0 * level))));
      const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - bits));
      for (auto& v : img.pixels) v &= mask;
      break;
    }
    case RandOp::kCount: break;
  }
}

void rand_augment(Image& image, int layers, double magnitude, int fill, SplitMix& rng) {
  for (int l = 0; l < layers; ++l) {
    const auto op = static_cast<RandOp>(rng.below(static_cast<uint64_t>(RandOp::kCount)));
    const double prob = rng.uniform(0.2, 0.8);
    const bool apply = rng.uniform() < prob;
    const bool negate = rng.uniform() < 0.5;
    if (apply) apply_rand_op(image, op, magnitude, negate, fill);
  }
}

}  // namespace nfscale::data
