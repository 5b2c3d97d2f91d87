// memory_format.h - putting a network input into channels_last so that the whole network runs channels_last.
// LibTorch picks a convolution's layout from its input's strides (suggest_memory_format). For a 1-channel image
// (Fashion-MNIST) or a 1x1 map, NCHW and channels_last describe the same memory, so x.contiguous(ChannelsLast)
// returns x unchanged with its NCHW strides, the first convolution runs NCHW, and so does every layer after it:
// oneDNN then reorders every activation to and from its blocked layout, on every call (measured on mini-F3 at
// 32 px: more time than the convolutions themselves; fixing the strides made the fp32 step 1.45x faster).
#pragma once
#include <torch/types.h>

namespace nfscale::models {

// x [B, C, H, W] with canonical channels_last strides (H*W*C, 1, W*C, C), so suggest_memory_format()
// says ChannelsLast even when C == 1 or H == W == 1. Returns x itself when it already has them, else a copy.
torch::Tensor to_channels_last(const torch::Tensor& x);

}  // namespace nfscale::models
