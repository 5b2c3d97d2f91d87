// image.cpp - channel conversion and tensor conversion for the planar uint8 Image buffer.
#include "nfscale/data/image.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nfscale::data {

Image convert_channels(const Image& src, int64_t channels) {
  if (src.channels == channels) return src;
  const int64_t hw = src.height * src.width;
  Image out(channels, src.height, src.width);
  if (channels == 3 && (src.channels == 1 || src.channels == 2)) {
    for (int64_t c = 0; c < 3; ++c) std::memcpy(out.plane(c), src.plane(0), static_cast<size_t>(hw));
  } else if (channels == 3 && src.channels == 4) {
    std::memcpy(out.pixels.data(), src.pixels.data(), static_cast<size_t>(3 * hw));
  } else if (channels == 1 && (src.channels == 3 || src.channels == 4)) {
    const uint8_t *r = src.plane(0), *g = src.plane(1), *b = src.plane(2);
    uint8_t* o = out.plane(0);
    for (int64_t i = 0; i < hw; ++i) {
      o[i] = static_cast<uint8_t>(std::lround(0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]));
    }
  } else if (channels == 1 && src.channels == 2) {
    std::memcpy(out.plane(0), src.plane(0), static_cast<size_t>(hw));
  } else {
    throw std::invalid_argument("convert_channels: cannot convert " + std::to_string(src.channels) + " to " +
                                std::to_string(channels) + " channels");
  }
  return out;
}

torch::Tensor to_tensor(const Image& image) {
  auto t = torch::empty({image.channels, image.height, image.width}, torch::kUInt8);  // [C,H,W]
  if (!image.pixels.empty()) std::memcpy(t.data_ptr<uint8_t>(), image.pixels.data(), image.pixels.size());
  return t;
}

Image from_tensor(const torch::Tensor& chw_uint8) {
  TORCH_CHECK(chw_uint8.dim() == 3 && chw_uint8.scalar_type() == torch::kUInt8, "from_tensor: need uint8 [C,H,W]");
  auto t = chw_uint8.contiguous();
  Image out(t.size(0), t.size(1), t.size(2));
  if (!out.pixels.empty()) std::memcpy(out.pixels.data(), t.data_ptr<uint8_t>(), out.pixels.size());
  return out;
}

}  // namespace nfscale::data
