// fused_ops.h - fused element-wise ops of the NFNet block as custom autograd functions with hand-written
// backward passes (kernels: fused_kernels.h), and the process-wide switch between them and the unfused
// composition of ATen ops. Any dense layout (NCHW or channels_last), dtypes fp32, bf16 (fp32 math) and fp64
// (scalar reference math, used by the gradient checks).
#pragma once
#include <torch/types.h>

#include <string>

namespace nfscale::models {

// Whether layers.cpp / nfnet.cpp use the fused ops. Default: on iff NFSCALE_FUSED is not "0" and the kernels
// passed their self-check on this CPU (fused_self_check(), run once on first query). set_fused_ops overrides.
bool fused_ops_enabled();
void set_fused_ops(bool enabled);
// Runs the kernels of the selected ISA on fixed inputs against fp64 references; true when all are within
// tolerance (fp32: 2e-6 relative to scale, bf16: one bf16 rounding). Cached after the first call.
bool fused_self_check();
// One line for logs/benchmarks: "fused ops on (avx512 kernels)" / "off (NFSCALE_FUSED=0)" / ...
std::string fused_ops_status();

// y = scale * gelu_tanh(x), gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// x any shape (dense), fp32/bf16/fp64 -> y same shape, dtype and strides. Backward: dx = dy * scale * gelu_tanh'(x).
torch::Tensor fused_scaled_gelu(const torch::Tensor& x, double scale);

// The NF block's residual tail, one pass forward and one backward:
//   out = shortcut + alpha * skip_gain * (2 * gate) * mask * branch
// shortcut, branch [B,C,H,W] (same dtype; shortcut is converted to branch's layout), gate [B,C] (sigmoid output,
// any float dtype), mask [B] per-sample stochastic-depth keep mask (0/1) or undefined (= all ones), skip_gain a
// 0-dim parameter. Returns [B,C,H,W] in branch's dtype and layout. Gradients flow to shortcut, branch, gate and
// skip_gain (not to mask).
torch::Tensor fused_residual_tail(const torch::Tensor& shortcut, const torch::Tensor& branch, const torch::Tensor& gate,
                                  const torch::Tensor& mask, const torch::Tensor& skip_gain, double alpha);

}  // namespace nfscale::models
