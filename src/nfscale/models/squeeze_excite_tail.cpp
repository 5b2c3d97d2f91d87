// squeeze_excite_tail.cpp - the squeeze-excite gate + residual tail autograd node (squeeze_excite_tail.h): forward
// as SqueezeExcite::gate then fused_residual_tail compute it; backward by hand in the order autograd ran the unfused
// nodes (tail, sigmoid, fc1, ReLU, fc0, mean), with the mean's broadcast gradient added into the tail's in place.
#include "nfscale/models/squeeze_excite_tail.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/pointwise_linear.h"

namespace nfscale::models {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// -1: follow the environment; 0 / 1: set_squeeze_excite_tail.
std::atomic<int> g_se_override{-1};
bool se_env_on() {
  static const bool on = !(std::getenv("NFSCALE_FUSED_SE") && std::string(std::getenv("NFSCALE_FUSED_SE")) == "0");
  return on;
}

class SqueezeExciteTailFn : public torch::autograd::Function<SqueezeExciteTailFn> {
 public:
  // shortcut, h [B,C,H,W] same dtype and strides; w0 [hid, C], b0 [hid], w1 [C, hid], b1 [C] contiguous; mask [B];
  // skip_gain [].
  static Tensor forward(AutogradContext* ctx, const Tensor& shortcut, const Tensor& h, const Tensor& w0,
                        const Tensor& b0, const Tensor& w1, const Tensor& b1, const Tensor& mask,
                        const Tensor& skip_gain, double alpha) {
    const int64_t hw = h.size(2) * h.size(3);
    // the gate, as SqueezeExcite::gate computes it
    const Tensor pooled = h.sum({2, 3}) * (1.0 / static_cast<double>(hw));  // [B, C]
    const Tensor a0 = torch::relu(linear_rows_forward(pooled, w0, b0));     // [B, hid]
    const Tensor gate = torch::sigmoid(linear_rows_forward(a0, w1, b1));     // [B, C]
    // the tail, as fused_residual_tail computes it
    const ResidualTailCoef c = residual_tail_coef(gate, mask, skip_gain, alpha, h.scalar_type());
    Tensor out = residual_tail_pass(shortcut, h, c.coef);  // [B, C, H, W]
    ctx->save_for_backward({h, pooled, a0, gate, w0, w1, c.coef, c.unit, c.ms, c.sg});
    ctx->saved_data["sg_dtype"] = skip_gain.scalar_type();
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &h = saved[0], &pooled = saved[1], &a0 = saved[2], &gate = saved[3];  // [B,C,H,W] [B,C] [B,hid] [B,C]
    const Tensor &w0 = saved[4], &w1 = saved[5];                                      // [hid, C], [C, hid]
    const Tensor &coef = saved[6], &unit = saved[7], &ms = saved[8], &sg = saved[9];  // [B,C] [B,C] [B,1] []
    const int64_t B = h.size(0), C = h.size(1), hw = h.size(2) * h.size(3);
    const Tensor g = grads[0].to(h.scalar_type());  // [B,C,H,W]
    // tail: dh = coef g (added to below), dot = sum_hw g h, d gate and d skip_gain
    Tensor dh, dot;
    residual_tail_grad_pass(g, h, coef, dh, dot);
    const Tensor dgate = dot * ms * sg;                                                      // [B, C]
    const Tensor dsg = (unit * dot).sum().to(ctx->saved_data["sg_dtype"].toScalarType());   // []
    // gate: sigmoid, fc1, ReLU, fc0 (each as autograd's node for it computes it)
    const Tensor dz1 = at::sigmoid_backward(dgate, gate);  // [B, C]
    const LinearRowsGrads g1 = linear_rows_backward(dz1, a0, w1, true, ctx->needs_input_grad(4),
                                                    ctx->needs_input_grad(5));
    const Tensor dz0 = at::threshold_backward(g1.dx, a0, 0);  // [B, hid]
    const bool need_pooled = ctx->needs_input_grad(1);
    const LinearRowsGrads g0 = linear_rows_backward(dz0, pooled, w0, need_pooled, ctx->needs_input_grad(2),
                                                    ctx->needs_input_grad(3));
    // mean over H, W: its gradient is dpooled / HW broadcast over the map, summed into the tail's in place
    if (need_pooled) dh.add_((g0.dx * (1.0 / static_cast<double>(hw))).view({B, C, 1, 1}));
    return {g, dh, g0.dw, g0.db, g1.dw, g1.db, Tensor(), dsg, Tensor()};
  }
};

}  // namespace

bool squeeze_excite_tail_enabled() {
  if (!fused_ops_enabled()) return false;
  const int o = g_se_override.load();
  return o >= 0 ? o == 1 : se_env_on();
}

void set_squeeze_excite_tail(bool enabled) { g_se_override.store(enabled ? 1 : 0); }

bool squeeze_excite_tail_applies(const Tensor& h) {
  const auto st = h.scalar_type();
  return h.defined() && h.dim() == 4 && (st == at::kFloat || st == at::kDouble) && h.device().is_cpu() &&
         !at::autocast::is_cpu_enabled() && squeeze_excite_tail_enabled();
}

Tensor squeeze_excite_tail(const Tensor& shortcut, const Tensor& h, const Tensor& w0, const Tensor& b0,
                           const Tensor& w1, const Tensor& b1, const Tensor& mask, const Tensor& skip_gain,
                           double alpha) {
  TORCH_CHECK(h.dim() == 4 && shortcut.sizes() == h.sizes(), "squeeze_excite_tail: shortcut ", shortcut.sizes(),
              " and branch ", h.sizes(), " must both be [B,C,H,W]");
  const int64_t B = h.size(0), C = h.size(1);
  TORCH_CHECK(w0.dim() == 2 && w0.size(1) == C && b0.dim() == 1 && b0.size(0) == w0.size(0),
              "squeeze_excite_tail: fc0 must be weight [hidden, ", C, "] and bias [hidden], got ", w0.sizes(), " and ",
              b0.sizes());
  TORCH_CHECK(w1.dim() == 2 && w1.size(0) == C && w1.size(1) == w0.size(0) && b1.dim() == 1 && b1.size(0) == C,
              "squeeze_excite_tail: fc1 must be weight [", C, ", ", w0.size(0), "] and bias [", C, "], got ",
              w1.sizes(), " and ", b1.sizes());
  TORCH_CHECK(!mask.defined() || mask.numel() == B, "squeeze_excite_tail: mask must have B = ", B, " elements");
  const auto st = h.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble, "squeeze_excite_tail: fp32 or fp64 maps only, got ", st);
  for (const Tensor* t : {&w0, &b0, &w1, &b1})
    TORCH_CHECK(t->scalar_type() == st, "squeeze_excite_tail: the SE weights must have the maps' dtype ", st);
  // one dense layout for both streams, as fused_residual_tail (autograd handles the copies)
  const auto fmt = h.suggest_memory_format();
  const Tensor br = h.contiguous(fmt);
  const Tensor sc = shortcut.to(st).contiguous(fmt);
  const Tensor m = mask.defined() ? mask.reshape({-1}) : torch::ones({B}, h.options());  // [B]
  return SqueezeExciteTailFn::apply(sc, br, w0.contiguous(), b0.contiguous(), w1.contiguous(), b1.contiguous(), m,
                                    skip_gain, alpha);
}

}  // namespace nfscale::models
