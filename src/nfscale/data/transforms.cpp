// transforms.cpp - crop boxes, bilinear resampling, flip, normalisation and the per-example pipeline.
#include "nfscale/data/transforms.h"

#include <algorithm>
#include <cmath>

#include "nfscale/data/randaugment.h"
#include "nfscale/util/error.h"

namespace nfscale::data {

void validate(const AugmentConfig& c, const std::string& where) {
  auto field = [&](const char* name) { return where + "." + name; };
  require(c.area_min > 0 && c.area_min <= c.area_max && c.area_max <= 1.0,
          field("area_min/area_max") + ": need 0 < area_min <= area_max <= 1");
  require(c.aspect_min > 0 && c.aspect_min <= c.aspect_max, field("aspect_min/aspect_max") +
                                                                 ": need 0 < aspect_min <= aspect_max");
  require(c.randaug_layers >= 0 && c.randaug_layers <= 16, field("randaug_layers") + ": need 0..16");
  require(c.randaug_magnitude >= 0 && c.randaug_magnitude <= 30, field("randaug_magnitude") + ": need 0..30");
  require(c.fill >= 0 && c.fill <= 255, field("fill") + ": need 0..255");
  require(c.mixup_alpha >= 0 && c.cutmix_alpha >= 0, field("mixup_alpha/cutmix_alpha") + ": need >= 0 (0 = off)");
  require(c.label_smoothing >= 0 && c.label_smoothing < 1, field("label_smoothing") + ": need 0 <= s < 1");
  require(c.eval_crop_fraction > 0 && c.eval_crop_fraction <= 1, field("eval_crop_fraction") + ": need (0, 1]");
  require(c.mean.size() == c.std.size(), field("mean/std") + ": need the same number of values");
  for (double s : c.std) require(s > 0, field("std") + ": values must be > 0");
}

CropBox random_resized_crop_box(int64_t height, int64_t width, const AugmentConfig& c, SplitMix& rng) {
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(c.aspect_min), log_hi = std::log(c.aspect_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(c.area_min, c.area_max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = std::llround(std::sqrt(target * aspect));
    const int64_t h = std::llround(std::sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int64_t top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height - h + 1)));
      const int64_t left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width - w + 1)));
      return CropBox{double(top), double(left), double(h), double(w)};
    }
  }
  // Fallback: whole image with the aspect clamped into the range, centred.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < c.aspect_min) h = std::llround(static_cast<double>(w) / c.aspect_min);
  else if (in_ratio > c.aspect_max) w = std::llround(static_cast<double>(h) * c.aspect_max);
  return CropBox{double((height - h) / 2), double((width - w) / 2), double(h), double(w)};
}

CropBox center_crop_box(int64_t height, int64_t width, int64_t resolution, double crop_fraction) {
  const double shorter = static_cast<double>(std::min(height, width));
  const double target = std::round(static_cast<double>(resolution) / crop_fraction);
  // Resized size per dimension (rounded, as an actual resize would produce), and the exact per-dimension scale.
  const double rh = std::max(1.0, std::round(static_cast<double>(height) * target / shorter));
  const double rw = std::max(1.0, std::round(static_cast<double>(width) * target / shorter));
  const double sy = static_cast<double>(height) / rh, sx = static_cast<double>(width) / rw;
  const double oy = std::floor((rh - static_cast<double>(resolution)) / 2), ox = std::floor((rw - static_cast<double>(resolution)) / 2);
  return CropBox{oy * sy, ox * sx, static_cast<double>(resolution) * sy, static_cast<double>(resolution) * sx};
}

Image resample_bilinear(const Image& src, const CropBox& box, int64_t out_h, int64_t out_w) {
  Image out(src.channels, out_h, out_w);
  // Per-axis source indices and weights: coordinate clamped into [0, size - 1] like torch's bilinear kernel.
  auto axis = [](double start, double len, int64_t out_n, int64_t in_n, std::vector<int64_t>& i0,
                 std::vector<int64_t>& i1, std::vector<float>& frac) {
    i0.resize(out_n), i1.resize(out_n), frac.resize(out_n);
    const double scale = len / static_cast<double>(out_n);
    for (int64_t o = 0; o < out_n; ++o) {
      double s = start + (static_cast<double>(o) + 0.5) * scale - 0.5;
      s = std::min(std::max(s, 0.0), static_cast<double>(in_n - 1));
      const int64_t a = static_cast<int64_t>(std::floor(s));
      i0[o] = a;
      i1[o] = std::min(a + 1, in_n - 1);
      frac[o] = static_cast<float>(s - static_cast<double>(a));
    }
  };
  std::vector<int64_t> y0, y1, x0, x1;
  std::vector<float> fy, fx;
  axis(box.top, box.height, out_h, src.height, y0, y1, fy);
  axis(box.left, box.width, out_w, src.width, x0, x1, fx);
  for (int64_t c = 0; c < src.channels; ++c) {
    const uint8_t* p = src.plane(c);
    uint8_t* o = out.plane(c);
    for (int64_t y = 0; y < out_h; ++y) {
      const uint8_t* r0 = p + y0[y] * src.width;
      const uint8_t* r1 = p + y1[y] * src.width;
      const float wy = fy[y];
      for (int64_t x = 0; x < out_w; ++x) {
        const float top = r0[x0[x]] + fx[x] * (float(r0[x1[x]]) - float(r0[x0[x]]));
        const float bot = r1[x0[x]] + fx[x] * (float(r1[x1[x]]) - float(r1[x0[x]]));
        const float v = top + wy * (bot - top);
        o[y * out_w + x] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v + 0.5f)));
      }
    }
  }
  return out;
}

Image resize_bilinear(const Image& src, int64_t out_h, int64_t out_w) {
  return resample_bilinear(src, CropBox{0, 0, double(src.height), double(src.width)}, out_h, out_w);
}

Image center_crop(const Image& src, int64_t out_h, int64_t out_w) {
  require(out_h <= src.height && out_w <= src.width, "center_crop: crop larger than the image");
  Image out(src.channels, out_h, out_w);
  const int64_t oy = (src.height - out_h) / 2, ox = (src.width - out_w) / 2;
  for (int64_t c = 0; c < src.channels; ++c)
    for (int64_t y = 0; y < out_h; ++y)
      std::copy_n(src.plane(c) + (y + oy) * src.width + ox, out_w, out.plane(c) + y * out_w);
  return out;
}

void flip_horizontal(Image& image) {
  for (int64_t c = 0; c < image.channels; ++c)
    for (int64_t y = 0; y < image.height; ++y) {
      uint8_t* row = image.plane(c) + y * image.width;
      std::reverse(row, row + image.width);
    }
}

void normalize_into(const Image& image, const std::vector<double>& mean, const std::vector<double>& std, float* out) {
  const int64_t hw = image.height * image.width;
  for (int64_t c = 0; c < image.channels; ++c) {
    const size_t k = mean.size() == 1 ? 0 : static_cast<size_t>(c);
    // Lookup table: 256 values per channel.
    float lut[256];
    for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>((v / 255.0 - mean.at(k)) / std.at(k));
    const uint8_t* p = image.plane(c);
    float* o = out + c * hw;
    for (int64_t i = 0; i < hw; ++i) o[i] = lut[p[i]];
  }
}

void transform_example(const Image& src_in, const AugmentConfig& cfg, int64_t R, int64_t out_channels, bool train,
                       uint64_t example_seed, float* out) {
  const Image* src = &src_in;
  Image converted;
  if (out_channels < src->channels) {  // reduce first (less work); replicate last (same result, less work)
    converted = convert_channels(*src, out_channels);
    src = &converted;
  }
  Image img;
  if (train) {
    SplitMix rng(example_seed);
    CropBox box = cfg.random_resized_crop ? random_resized_crop_box(src->height, src->width, cfg, rng)
                                          : center_crop_box(src->height, src->width, R, cfg.eval_crop_fraction);
    img = resample_bilinear(*src, box, R, R);
    if (cfg.flip && rng.uniform() < 0.5) flip_horizontal(img);
    if (cfg.randaug_layers > 0) rand_augment(img, cfg.randaug_layers, cfg.randaug_magnitude, cfg.fill, rng);
  } else {
    img = resample_bilinear(*src, center_crop_box(src->height, src->width, R, cfg.eval_crop_fraction), R, R);
  }
  if (img.channels != out_channels) img = convert_channels(img, out_channels);
  static const std::vector<double> kMean = {0.485, 0.456, 0.406}, kStd = {0.229, 0.224, 0.225};
  const bool imagenet = cfg.mean.empty();
  std::vector<double> mean = imagenet ? kMean : cfg.mean, stdv = imagenet ? kStd : cfg.std;
  if (static_cast<int64_t>(mean.size()) != out_channels && mean.size() != 1) {
    // e.g. ImageNet RGB statistics for a grey output: use their average.
    double m = 0, s = 0;
    for (size_t i = 0; i < mean.size(); ++i) m += mean[i], s += stdv[i];
    mean = {m / double(mean.size())}, stdv = {s / double(stdv.size())};
  }
  normalize_into(img, mean, stdv, out);
}

}  // namespace nfscale::data
