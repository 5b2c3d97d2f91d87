// memory_format.cpp - see memory_format.h.
#include "nfscale/models/memory_format.h"

#include <ATen/ATen.h>

namespace nfscale::models {

torch::Tensor to_channels_last(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "to_channels_last: expected [B, C, H, W], got ", x.sizes());
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && x.suggest_memory_format() == at::MemoryFormat::ChannelsLast)
    return x;
  // at::empty with a memory format computes the canonical strides (stride(1) == 1) whatever the sizes.
  torch::Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::ChannelsLast));
  y.copy_(x);
  return y;
}

}  // namespace nfscale::models
