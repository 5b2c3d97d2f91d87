// squeeze_excite_tail.h - the NF block's squeeze-excite gate and residual tail as one autograd node, with a
// hand-written backward. Unfused, the gate (mean, two linear layers, ReLU, sigmoid) and the tail are ~12 autograd
// nodes and ~40 small ATen ops per block, and the branch's gradient from the tail and from the gate's mean are summed
// by autograd into a new tensor: on mini-F3 (24 blocks at 2x2 to 8x8 maps) the gate alone took 12-16% of a 1-thread
// training step (docs/performance.md, "Issue 12, session 14"). Here the node runs the same GEMM routes
// (pointwise_linear.h) and the same tail passes (fused_ops.h), and adds the gate's gradient into the tail's in place.
#pragma once
#include <torch/types.h>

namespace nfscale::models {

// out = shortcut + alpha * skip_gain * 2 * gate * mask * h,  gate = sigmoid(fc1(relu(fc0(mean_hw(h))))),
// fc_i(z) = z W_i^T + b_i. shortcut, h [B,C,H,W] (same dtype: fp32 or fp64; shortcut is converted to h's layout),
// w0 [hidden, C], b0 [hidden], w1 [C, hidden], b1 [C] (h's dtype), mask [B] stochastic-depth keep mask (0/1) or
// undefined (all ones), skip_gain a 0-dim parameter. Returns [B,C,H,W] in h's dtype and layout (NCHW or channels_last).
// Gradients flow to shortcut, h, w0, b0, w1, b1 and skip_gain. Forward values equal SqueezeExcite::gate followed by
// fused_residual_tail bit for bit (same ops, same GEMM routes); gradients agree to rounding.
torch::Tensor squeeze_excite_tail(const torch::Tensor& shortcut, const torch::Tensor& h, const torch::Tensor& w0,
                                  const torch::Tensor& b0, const torch::Tensor& w1, const torch::Tensor& b1,
                                  const torch::Tensor& mask, const torch::Tensor& skip_gain, double alpha);

// Whether the NF block takes squeeze_excite_tail for a branch h: the switch on, h a 4-D fp32 or fp64 CPU tensor, and
// not under CPU autocast (bf16 runs keep SqueezeExcite::gate + fused_residual_tail, whose linear layers autocast).
bool squeeze_excite_tail_applies(const torch::Tensor& h);

// The switch. Default: on iff the fused ops are on (fused_ops.h) and NFSCALE_FUSED_SE is not "0";
// set_squeeze_excite_tail overrides the environment (not the fused-ops switch, which turns every fused path off).
bool squeeze_excite_tail_enabled();
void set_squeeze_excite_tail(bool enabled);

}  // namespace nfscale::models
