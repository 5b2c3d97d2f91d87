// image.h - the decoded-image buffer the data pipeline works on: uint8, planar [C,H,W], plus tensor conversion.
// Per-image augmentation runs as plain C++ loops on these buffers (small images; cheaper than many LibTorch ops).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace nfscale::data {

struct Image {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // planar [C,H,W], row-major within a plane

  Image() = default;
  Image(int64_t c, int64_t h, int64_t w, uint8_t fill = 0)
      : channels(c), height(h), width(w), pixels(static_cast<size_t>(c * h * w), fill) {}
  uint8_t* plane(int64_t c) { return pixels.data() + c * height * width; }
  const uint8_t* plane(int64_t c) const { return pixels.data() + c * height * width; }
  uint8_t& at(int64_t c, int64_t y, int64_t x) { return pixels[static_cast<size_t>((c * height + y) * width + x)]; }
  uint8_t at(int64_t c, int64_t y, int64_t x) const {
    return pixels[static_cast<size_t>((c * height + y) * width + x)];
  }
  bool empty() const { return pixels.empty(); }
};

// Converts to `channels` (1 or 3): 1->3 replicates the plane, 3->1 takes ITU-R 601 luma, 4->3 drops alpha,
// 2->1 (grey+alpha) drops alpha. Throws std::invalid_argument for other combinations.
Image convert_channels(const Image& src, int64_t channels);

// uint8 tensor [C,H,W] (a copy) <-> Image.
torch::Tensor to_tensor(const Image& image);
Image from_tensor(const torch::Tensor& chw_uint8);

}  // namespace nfscale::data
