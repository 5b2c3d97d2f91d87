// pointwise_linear.h - the pointwise (1x1) conv's GEMM, y = x W^T + b over channels_last rows (and the Dense layers'
// GEMMs: squeeze-excite, classifier), with its backward on
// oneDNN's sgemm (onednn_sgemm.h) for fp32 CPU tensors, instead of ATen's linear (OpenBLAS's sgemm here). Every
// other case (fp64, bf16 or autocast, another device, a small shape, no oneDNN in the build, the switch off) is
// torch::linear.
#pragma once
#include <torch/types.h>

namespace nfscale::models {

// rows [M, in], weight [out, in], bias [out] or undefined -> [M, out]; differentiable in all three.
torch::Tensor pointwise_linear(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& bias);

// Whether pointwise_linear would take the oneDNN route for these operands: fp32 CPU, not under autocast, the switch
// on, and a shape where oneDNN's sgemm measured faster than OpenBLAS's (>= 16 channels each side, and >= 2048 rows or
// >= 64 channels).
bool pointwise_linear_uses_onednn(const torch::Tensor& rows, const torch::Tensor& weight);
// The same for fp32 CPU operands of this shape: rows [rows, in], weight [out, in] (reads the autocast state).
bool pointwise_linear_uses_onednn(int64_t rows, int64_t in, int64_t out);

// The same GEMMs without autograd, by the same route (oneDNN's sgemm where pointwise_linear would take it, else ATen:
// addmm / mm, OpenBLAS for fp32), for a function that folds a linear layer into a larger autograd node
// (squeeze_excite_tail.h). rows [M, in], weight [out, in], bias [out] or undefined, all contiguous -> [M, out].
torch::Tensor linear_rows_forward(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& bias);
// Its gradients for dy [M, out] (contiguous): dx = dy W [M, in], dw = dy^T rows [out, in], db = sum over rows of dy
// [out]; each only when asked (else undefined).
struct LinearRowsGrads {
  torch::Tensor dx, dw, db;
};
LinearRowsGrads linear_rows_backward(const torch::Tensor& dy, const torch::Tensor& rows, const torch::Tensor& weight,
                                     bool need_dx, bool need_dw, bool need_db);

// The switch: on iff the build has oneDNN's sgemm, the fused ops are on and NFSCALE_ONEDNN_SGEMM is not "0";
// set_onednn_sgemm overrides the environment (not the fused-ops switch).
bool onednn_sgemm_enabled();
void set_onednn_sgemm(bool enabled);

}  // namespace nfscale::models
