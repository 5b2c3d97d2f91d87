// dense_conv3x3.h - dense (ungrouped) 3x3 SAME convolutions with few channels, stride 1 or 2, on channels_last fp32
// maps (the ladder stems, nano/micro-F0's 4- and 8-channel stages) as direct kernels (dense_conv3x3_kernels.h) with a
// hand-written backward, instead of oneDNN, which runs these shapes at 15-45 GFLOP/s on one thread (docs/performance.md,
// issue 12 sessions 6 and 8); the switch; the route.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace nfscale::models {

// y = conv2d(x, w, bias, stride) with TF 'SAME' zero padding (stride 1: one pixel on every side; stride 2: out =
// ceil(in / 2), padding 0 before and 1 after on even extents, 1 and 1 on odd ones). x [B, C, H, W] (any strides; computed channels_last), w [O, C, 3, 3]
// (the standardised weight), bias [O] -> y [B, O, Ho, Wo] channels_last, x's dtype. fp32 runs the selected ISA's
// kernels; fp64 runs scalar fp64 loops (the reference the gradient checks use). Gradients flow to x, w and bias.
torch::Tensor dense_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t stride);

// Whether WSConv2d routes a conv (kernel, stride, groups, channels in -> out) over x to dense_conv3x3: 3x3, one group,
// x fp32 (not under bf16 autocast) or fp64 on the CPU, channels_last-contiguous, the route on
// (dense_conv3x3_kernels_enabled()), and a shape measured faster than oneDNN (WSConv2d forward + backward, batch 128,
// one thread, CPU time: bench_fused BM_DenseConv3x3; docs/performance.md "Issue 12, session 8"):
// - stride 1: in, out <= 8 channels, H and W in [4, 16]: 8 -> 8 at 16x16 1.7x, 8x8 1.3x, 4x4 1.3x, 4 -> 4 at 8x8 2.1x.
//   16 -> 16 at 8x8 (mini-F0's first stage) stays on oneDNN, whose kernels fill a 16-channel vector there (~100
//   GFLOP/s; an early version of these kernels ran it at 0.75x);
// - stride 2: in, out <= 8 channels, H and W in [8, 32]: the stems' 1 -> 8 at 32x32 (1.8x) and 8 -> 4 / 8 at 16x16
//   (1.4x / 1.1x). 8 -> 16 at 16x16 (mini's stem exit) measured 0.94x and stays on oneDNN.
bool dense_conv3x3_applies(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t groups, int64_t in_channels,
                           int64_t out_channels);

// The route's switch. Default: on iff the fused ops are on (fused_ops.h), NFSCALE_DENSE_CONV3X3 is not "0", and the
// selected kernels pass their self-check against the fp64 loops. set_dense_conv3x3_kernels overrides the env (not the
// fused-ops switch, which turns every fused path off).
bool dense_conv3x3_kernels_enabled();
void set_dense_conv3x3_kernels(bool enabled);

// The kernels' ISA: the widest this CPU runs, or NFSCALE_FUSED_ISA=generic|avx2 (as the fused ops). For tests and
// benchmarks, force_dense_conv3x3_isa("avx512" | "avx2" | "generic") selects one (throws if the CPU cannot run it) and
// force_dense_conv3x3_isa("") restores the default.
std::string dense_conv3x3_isa();
void force_dense_conv3x3_isa(const std::string& isa);
// Max |kernel - fp64 loops| / tolerance of the given ISA over fixed small problems (all passes; channel counts and
// map widths that hit every register block); <= 1 passes.
double dense_conv3x3_self_check_error(const std::string& isa);

}  // namespace nfscale::models
