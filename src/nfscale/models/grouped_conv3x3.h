// grouped_conv3x3.h - the NF block's 3x3 convolutions with 16 channels per group (C = 16 * G in and out) on
// channels_last fp32 maps as direct kernels (conv3x3_kernels.h) with a hand-written backward, instead of oneDNN,
// whose grouped / 16-channel kernels run these shapes at 5-60 GFLOP/s (docs/performance.md); the switch; the route.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace nfscale::models {

// y = conv2d(x, w, bias, stride, groups = C / 16) with zero padding pad_top / pad_left before and whatever
// (out_h, out_w) needs after (TF 'SAME' included). x [B, C, H, W] (any strides; computed channels_last), w [C, 16, 3, 3],
// bias [C] -> y [B, C, out_h, out_w] channels_last, x's dtype. fp32 runs the selected ISA's kernels; fp64 runs scalar
// fp64 loops (the reference the gradient checks use). Gradients flow to x, w and bias.
torch::Tensor grouped_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t stride,
                              int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w);

// Convs with at most this many output pixels (Ho * Wo) take the route. The kernels block 16 images at one pixel:
// measured (batch 128, one thread, forward + backward) 1.3-2.4x faster than oneDNN for the ladder's 4x4, 2x2 and
// 1x1 outputs (also stride 2 from 8x8 and 4x4), but 0.9x on 8x8 and 0.65x on 16x16 outputs (16 images' rows at a
// power-of-two stride alias in L1; docs/performance.md).
constexpr int64_t kConv3x3MaxOutputPixels = 16;

// Whether WSConv2d routes a conv (kernel, stride, groups, channels in -> out) over x to grouped_conv3x3: 3x3, stride
// 1 or 2, in = out = 16 * groups, x fp32 (not under bf16 autocast) or fp64 on the CPU, channels_last-contiguous, at
// most kConv3x3MaxOutputPixels output pixels, and the route is on (conv3x3_kernels_enabled()).
bool grouped_conv3x3_applies(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t groups,
                             int64_t in_channels, int64_t out_channels);

// The route's switch. Default: on iff the fused ops are on (fused_ops.h), NFSCALE_CONV3X3 is not "0", and the
// selected kernels pass their self-check against the fp64 loops. set_conv3x3_kernels overrides the env (not the
// fused-ops switch, which turns every fused path off).
bool conv3x3_kernels_enabled();
void set_conv3x3_kernels(bool enabled);

// The kernels' ISA: the widest this CPU runs, or NFSCALE_FUSED_ISA=generic|avx2 (as the fused ops). For tests and
// benchmarks, force_conv3x3_isa("avx512" | "avx2" | "generic") selects one (throws if the CPU cannot run it) and
// force_conv3x3_isa("") restores the default.
std::string conv3x3_isa();
void force_conv3x3_isa(const std::string& isa);
// Max |kernel - fp64 loops| / tolerance of the given ISA over a fixed small problem (all passes, strides 1 and 2);
// <= 1 passes.
double conv3x3_self_check_error(const std::string& isa);

}  // namespace nfscale::models
