// mix.cpp - Beta sampling, label smoothing, MixUp and CutMix on contiguous float buffers.
#include "nfscale/data/mix.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nfscale::data {
namespace {

double normal(SplitMix& rng) {  // Box-Muller
  const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

double gamma(double a, SplitMix& rng) {
  if (a < 1.0) return gamma(a + 1.0, rng) * std::pow(1.0 - rng.uniform(), 1.0 / a);
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

// Copies rows [begin, end) of a [B, row] buffer.
std::vector<float> copy_rows(const float* data, int64_t begin, int64_t end, int64_t row) {
  return std::vector<float>(data + begin * row, data + end * row);
}

void mix_targets(float* targets, const std::vector<float>& orig, int64_t begin, int64_t end, int64_t classes,
                 double lam) {
  const float l = static_cast<float>(lam);
  for (int64_t r = begin; r < end; ++r) {
    const int64_t p = begin + end - 1 - r;
    const float* a = orig.data() + (r - begin) * classes;
    const float* b = orig.data() + (p - begin) * classes;
    for (int64_t k = 0; k < classes; ++k) targets[r * classes + k] = l * a[k] + (1.0f - l) * b[k];
  }
}

}  // namespace

double sample_beta(double a, double b, SplitMix& rng) {
  const double x = gamma(a, rng), y = gamma(b, rng);
  return x + y > 0 ? x / (x + y) : 0.5;
}

void smooth_targets(const int64_t* labels, int64_t batch, int64_t classes, double smoothing, float* targets) {
  const float off = static_cast<float>(smoothing / static_cast<double>(classes));
  const float on = static_cast<float>(1.0 - smoothing) + off;
  std::fill(targets, targets + batch * classes, off);
  for (int64_t r = 0; r < batch; ++r) targets[r * classes + labels[r]] = on;
}

double mixup_rows(float* images, float* targets, int64_t begin, int64_t end, int64_t image_size, int64_t classes,
                  double alpha, SplitMix& rng) {
  const double lam = sample_beta(alpha, alpha, rng);
  if (end - begin < 2) return 1.0;
  const auto img = copy_rows(images, begin, end, image_size);
  const auto tgt = copy_rows(targets, begin, end, classes);
  const float l = static_cast<float>(lam);
  for (int64_t r = begin; r < end; ++r) {
    const int64_t p = begin + end - 1 - r;
    const float* a = img.data() + (r - begin) * image_size;
    const float* b = img.data() + (p - begin) * image_size;
    float* o = images + r * image_size;
    for (int64_t i = 0; i < image_size; ++i) o[i] = l * a[i] + (1.0f - l) * b[i];
  }
  mix_targets(targets, tgt, begin, end, classes, lam);
  return lam;
}

double cutmix_rows(float* images, float* targets, int64_t begin, int64_t end, int64_t channels, int64_t height,
                   int64_t width, int64_t classes, double alpha, SplitMix& rng) {
  const double lam0 = sample_beta(alpha, alpha, rng);
  // Box of relative side sqrt(1 - lam0), centre uniform, clipped to the image.
  const double cut = std::sqrt(1.0 - lam0);
  const int64_t ch = static_cast<int64_t>(cut * height), cw = static_cast<int64_t>(cut * width);
  const int64_t cy = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height)));
  const int64_t cx = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width)));
  const int64_t y0 = std::max<int64_t>(0, cy - ch / 2), y1 = std::min(height, cy + ch / 2);
  const int64_t x0 = std::max<int64_t>(0, cx - cw / 2), x1 = std::min(width, cx + cw / 2);
  const double lam = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(height * width);
  if (end - begin < 2) return 1.0;
  const int64_t image_size = channels * height * width;
  const auto img = copy_rows(images, begin, end, image_size);
  const auto tgt = copy_rows(targets, begin, end, classes);
  for (int64_t r = begin; r < end; ++r) {
    const int64_t p = begin + end - 1 - r;
    const float* b = img.data() + (p - begin) * image_size;
    float* o = images + r * image_size;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) o[(c * height + y) * width + x] = b[(c * height + y) * width + x];
  }
  mix_targets(targets, tgt, begin, end, classes, lam);
  return lam;
}

}  // namespace nfscale::data
