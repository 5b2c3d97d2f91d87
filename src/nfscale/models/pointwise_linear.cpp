// pointwise_linear.cpp - y = x W^T + b on oneDNN's sgemm, as an autograd function (forward one GEMM; backward the
// input gradient dY W, the weight gradient dY^T X and the bias gradient's column sums).
#include "nfscale/models/pointwise_linear.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/onednn_sgemm.h"

namespace nfscale::models {
namespace {

// -1: follow the environment; 0 / 1: set_onednn_sgemm.
std::atomic<int> g_override{-1};
// NFSCALE_ONEDNN_SGEMM=0 turns the route off; read once, at the first use.
bool env_on() {
  static const bool on = !(std::getenv("NFSCALE_ONEDNN_SGEMM") && std::string(std::getenv("NFSCALE_ONEDNN_SGEMM")) == "0");
  return on;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y [M, out] = rows [M, in] @ weight [out, in]^T (+ bias [out], broadcast over rows).
torch::Tensor forward_gemm(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t M = rows.size(0), in = rows.size(1), out = weight.size(0);
  torch::Tensor y;
  float beta = 0.0f;
  if (bias.defined()) {
    y = bias.reshape({1, out}).expand({M, out}).contiguous();  // C starts as the bias: beta 1 adds the product
    beta = 1.0f;
  } else {
    y = torch::empty({M, out}, rows.options());
  }
  if (M > 0 && out > 0)
    onednn_sgemm(false, true, M, out, in, rows.data_ptr<float>(), in, weight.data_ptr<float>(), in, beta,
                 y.data_ptr<float>(), out);
  return y;
}

// C [M, N] = op(A) [M, K] @ B [K, N] on oneDNN's sgemm (row-major, contiguous; op(A) = A^T when trans_a); an empty
// inner dimension (K = 0) gives zeros.
torch::Tensor onednn_product(bool trans_a, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                             const torch::TensorOptions& options) {
  torch::Tensor C = torch::empty({M, N}, options);
  if (M > 0 && N > 0) {
    if (K > 0)
      onednn_sgemm(trans_a, false, M, N, K, A, lda, B, N, 0.0f, C.data_ptr<float>(), N);
    else
      C.zero_();
  }
  return C;
}

// dx = dY W, dW = dY^T X on oneDNN's sgemm (fp32, contiguous); db = column sums of dY.
LinearRowsGrads onednn_backward(const torch::Tensor& dy, const torch::Tensor& x, const torch::Tensor& w, bool need_dx,
                                bool need_dw, bool need_db) {
  const int64_t M = x.size(0), in = x.size(1), out = w.size(0);
  LinearRowsGrads r;
  if (need_dx) r.dx = onednn_product(false, M, in, out, dy.data_ptr<float>(), out, w.data_ptr<float>(), x.options());
  if (need_dw) r.dw = onednn_product(true, out, in, M, dy.data_ptr<float>(), out, x.data_ptr<float>(), w.options());
  if (need_db) r.db = dy.sum(0);  // [out]
  return r;
}

struct PointwiseLinearFn : public torch::autograd::Function<PointwiseLinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& rows, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    const auto x = rows.contiguous();   // [M, in]
    const auto w = weight.contiguous();  // [out, in]
    ctx->save_for_backward({x, w});
    const bool has_bias = bias.numel() > 0;  // an empty bias stands for none
    ctx->saved_data["has_bias"] = has_bias;
    return forward_gemm(x, w, has_bias ? bias.contiguous() : torch::Tensor());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];  // [M, in]
    const auto& w = saved[1];  // [out, in]
    const auto dy = grads[0].contiguous();  // [M, out]
    const LinearRowsGrads r = onednn_backward(dy, x, w, ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                              ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2));
    return {r.dx, r.dw, r.db};
  }
};

// Where oneDNN's sgemm beat OpenBLAS's, single-threaded (forward and weight-gradient GEMMs, docs/performance.md, issue
// 12 session 9): at least 16 channels on both sides, and either 2048+ rows or 64+ channels. Below 16 channels
// (nano-F0's 4-8) OpenBLAS was 1.3-2.7x faster; at 512 rows with 24-48 channels 1.1-1.4x.
bool onednn_sgemm_pays(int64_t rows, int64_t in, int64_t out) {
  const int64_t c = std::min(in, out);
  return c >= 16 && (rows >= 2048 || c >= 64);
}

}  // namespace

bool onednn_sgemm_enabled() {
  if (!onednn_sgemm_built() || !fused_ops_enabled()) return false;
  const int o = g_override.load();
  return o >= 0 ? o == 1 : env_on();
}

void set_onednn_sgemm(bool enabled) { g_override.store(enabled ? 1 : 0); }

bool pointwise_linear_uses_onednn(int64_t rows, int64_t in, int64_t out) {
  return onednn_sgemm_enabled() && !at::autocast::is_cpu_enabled() && onednn_sgemm_pays(rows, in, out);
}

bool pointwise_linear_uses_onednn(const torch::Tensor& rows, const torch::Tensor& weight) {
  return onednn_sgemm_enabled() && rows.dim() == 2 && weight.dim() == 2 && rows.size(1) == weight.size(1) &&
         rows.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat && rows.device().is_cpu() &&
         weight.device().is_cpu() && !at::autocast::is_cpu_enabled() &&
         onednn_sgemm_pays(rows.size(0), rows.size(1), weight.size(0));
}

torch::Tensor pointwise_linear(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& bias) {
  // rows [M, in], weight [out, in], bias [out] -> [M, out]
  if (!pointwise_linear_uses_onednn(rows, weight) ||
      (bias.defined() && (bias.scalar_type() != torch::kFloat || bias.dim() != 1 || bias.size(0) != weight.size(0))))
    return torch::linear(rows, weight, bias);
  // autograd::Function cannot take an undefined tensor (LibTorch 1.13): no bias travels as an empty one.
  return PointwiseLinearFn::apply(rows, weight, bias.defined() ? bias : torch::empty({0}, rows.options()));
}

torch::Tensor linear_rows_forward(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& bias) {
  // rows [M, in], weight [out, in], bias [out] or undefined -> [M, out]
  if (pointwise_linear_uses_onednn(rows, weight) && (!bias.defined() || bias.scalar_type() == torch::kFloat))
    return forward_gemm(rows.contiguous(), weight.contiguous(), bias.defined() ? bias.contiguous() : torch::Tensor());
  return bias.defined() ? at::addmm(bias, rows, weight.t()) : at::mm(rows, weight.t());  // torch::linear's ops
}

LinearRowsGrads linear_rows_backward(const torch::Tensor& dy, const torch::Tensor& rows, const torch::Tensor& weight,
                                     bool need_dx, bool need_dw, bool need_db) {
  // dy [M, out], rows [M, in], weight [out, in]
  if (pointwise_linear_uses_onednn(rows, weight))
    return onednn_backward(dy.contiguous(), rows.contiguous(), weight.contiguous(), need_dx, need_dw, need_db);
  LinearRowsGrads r;  // addmm's backward, as autograd runs it for torch::linear
  if (need_dx) r.dx = at::mm(dy, weight);       // [M, in]
  if (need_dw) r.dw = at::mm(dy.t(), rows);     // [out, in]
  if (need_db) r.db = dy.sum(0);                // [out]
  return r;
}

}  // namespace nfscale::models
