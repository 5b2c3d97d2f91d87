// fused_ops.h - fused ops of the NFNet block as custom autograd functions with hand-written backward passes
// (kernels: fused_kernels.h): the scaled GELU and the residual tail (any dense layout, NCHW or channels_last; fp32,
// bf16 with fp32 math, fp64 scalar reference math used by the gradient checks), scaled weight standardisation
// (fp32/fp64, and fp32 weights to a bf16 result for bf16 autocast), and the process-wide switch between them and
// the unfused composition of ATen ops.
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
// One line for logs/benchmarks: "fused ops on (avx512 kernels; direct 3x3 convs on, avx512)" / "off (NFSCALE_FUSED=0)"
// / ...
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

// The residual tail's pieces without autograd, for a function that folds the tail into a larger autograd node
// (squeeze_excite_tail.h); fused_residual_tail is built from them. The coefficient dtype ct is fp64 for fp64 maps,
// else fp32.
struct ResidualTailCoef {
  torch::Tensor ms;    // [B,1] ct: 2 alpha mask
  torch::Tensor unit;  // [B,C] ct: 2 alpha gate mask
  torch::Tensor sg;    // [] ct: skip_gain
  torch::Tensor coef;  // [B,C] ct, contiguous: unit * skip_gain, the branch's multiplier
};
// gate [B,C], mask [B] (ones for none), skip_gain [] -> the coefficients for maps of map_dtype.
ResidualTailCoef residual_tail_coef(const torch::Tensor& gate, const torch::Tensor& mask, const torch::Tensor& skip_gain,
                                    double alpha, at::ScalarType map_dtype);
// out = shortcut + coef (broadcast over H,W) * branch. shortcut, branch [B,C,H,W] with the same dtype (fp32, bf16,
// fp64) and the same dense strides; coef [B,C] from residual_tail_coef. Parallel over images.
torch::Tensor residual_tail_pass(const torch::Tensor& shortcut, const torch::Tensor& branch, const torch::Tensor& coef);
// Its backward: dbranch = coef * g (branch's strides) and dot[b,c] = sum_hw g * branch (coef's dtype), in one pass.
// g has branch's dtype, any strides (copied to branch's when they differ).
void residual_tail_grad_pass(const torch::Tensor& g, const torch::Tensor& branch, const torch::Tensor& coef,
                             torch::Tensor& dbranch, torch::Tensor& dot);

// Scaled weight standardisation (layers.h standardize_weight) in one pass forward and one backward, per output
// channel o of w viewed as [O, K], K = I/g * kh * kw:
//   u_ok = w_ok - mean_k w_ok,  S_o = sum_k u_ok^2,  r_o = 1 / sqrt(max(S_o, eps)),  w_hat_ok = gain_o r_o u_ok.
// weight [O, I/g, kh, kw] contiguous fp32/fp64, gain [O] same dtype -> w_hat [O, I/g, kh, kw] contiguous, in
// out_dtype (default: the weight's). Sums in double. Gradients flow to weight and gain (below the floor, S_o < eps,
// r_o is constant); dw and dgain are in the weight's dtype.
// bf16 output (fp32 weights only; what standardize_weight asks for under CPU bf16 autocast, so the conv gets the
// weight it would have cast): the fp32 value rounded once to nearest even, bit for bit w_hat.to(kBFloat16); its
// incoming gradient is read as bf16 (no fp32 copy). Any other out_dtype the kernel does not write (fp64 weight to
// bf16, fp32 to fp64) is the kernel in the weight's dtype then .to(out_dtype); a non-floating out_dtype throws.
// Any other input (dtype, layout, device) takes the unfused standardize_weight (then .to(out_dtype)).
torch::Tensor fused_standardize_weight(const torch::Tensor& weight, const torch::Tensor& gain, double eps,
                                       c10::optional<at::ScalarType> out_dtype = c10::nullopt);
// Whether fused_standardize_weight runs its own kernel for these inputs (else it is the unfused composition).
bool fused_standardize_weight_supports(const torch::Tensor& weight, const torch::Tensor& gain);

}  // namespace nfscale::models
