// layers.cpp - NFNet building blocks (see layers.h): scaled activations, SAME padding, WSConv2d, Dense,
// squeeze-excite, stochastic depth, and their counting-mode short cuts.
#include "nfscale/models/layers.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "nfscale/models/cost_counter.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/models/dense_conv3x3.h"
#include "nfscale/models/grouped_conv3x3.h"
#include "nfscale/models/pointwise_linear.h"
#include "nfscale/util/error.h"

namespace nfscale::models {

Activation parse_activation(const std::string& name, const std::string& field) {
  if (name == "gelu") return Activation::kGelu;
  if (name == "relu") return Activation::kRelu;
  if (name == "silu") return Activation::kSilu;
  if (name == "gelu_erf") return Activation::kGeluErf;
  throw UserError(field + ": unknown activation '" + name + "'; valid choices: gelu, relu, silu, gelu_erf");
}

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::kGelu: return "gelu";
    case Activation::kRelu: return "relu";
    case Activation::kSilu: return "silu";
    case Activation::kGeluErf: return "gelu_erf";
  }
  return "?";
}

double activation_gamma(Activation a) {
  switch (a) {
    case Activation::kGelu:
    case Activation::kGeluErf: return 1.7015043497085571;
    case Activation::kRelu: return 1.7139588594436646;
    case Activation::kSilu: return 1.7881293296813965;
  }
  return 1.0;
}

namespace {
// The fused GELU handles fp32, bf16 and fp64 tensors; anything else takes the ATen ops.
bool fused_gelu_for(const torch::Tensor& x, Activation a) {
  const auto st = x.scalar_type();
  return a == Activation::kGelu && (st == torch::kFloat || st == torch::kBFloat16 || st == torch::kDouble) &&
         x.device().is_cpu() && fused_ops_enabled();
}
}  // namespace

torch::Tensor scaled_activation(const torch::Tensor& x, Activation a) {
  if (active_counter()) return x;  // counting mode: shape only (not every activation has a meta kernel)
  if (fused_gelu_for(x, a)) return fused_scaled_gelu(x, activation_gamma(a));
  switch (a) {
    case Activation::kGelu: return torch::gelu(x, "tanh") * activation_gamma(a);
    case Activation::kRelu: return torch::relu(x) * activation_gamma(a);
    case Activation::kSilu: return torch::silu(x) * activation_gamma(a);
    case Activation::kGeluErf: return torch::gelu(x, "none") * activation_gamma(a);
  }
  return x;
}

torch::Tensor scaled_activation(const torch::Tensor& x, Activation a, double post_scale) {
  if (active_counter()) return x;
  if (fused_gelu_for(x, a)) return fused_scaled_gelu(x, activation_gamma(a) * post_scale);
  return scaled_activation(x, a) * post_scale;
}

SamePad same_padding(int64_t in, int64_t kernel, int64_t stride) {
  SamePad p;
  p.out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((p.out - 1) * stride + kernel - in, 0);
  p.before = total / 2;
  p.after = total - p.before;
  return p;
}

torch::Tensor avg_pool_2x2_same(const torch::Tensor& x) {
  // SAME for k=2, s=2 pads only after (one cell when the extent is odd); ceil_mode with no explicit padding
  // produces exactly that last partial window, averaged over its valid cells only (TF excludes padding).
  return torch::avg_pool2d(x, {2, 2}, {2, 2}, {0, 0}, /*ceil_mode=*/true, /*count_include_pad=*/false);
}

namespace {

// True inside a CPU autocast scope whose lower-precision dtype is bf16 (train::AutocastScope).
bool cpu_bf16_autocast() {
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
}

}  // namespace

torch::Tensor standardize_weight(const torch::Tensor& weight, const torch::Tensor& gain, double eps) {
  // weight [O, I/g, kh, kw]; statistics per output channel. fp32/fp64 contiguous weights take the fused op when the
  // fused ops are on. Under CPU bf16 autocast the fp32 master weight standardises straight to bf16 (the dtype the
  // conv would cast it to, same bits): no weight cast in forward, no gradient cast in backward. The composition
  // below keeps its input dtype (the conv casts it).
  if (fused_ops_enabled() && fused_standardize_weight_supports(weight, gain)) {
    if (cpu_bf16_autocast() && weight.scalar_type() == torch::kFloat)
      return fused_standardize_weight(weight, gain, eps, at::kBFloat16);  // [O, I/g, kh, kw] bf16
    return fused_standardize_weight(weight, gain, eps);
  }
  const int64_t fan_in = weight[0].numel();
  auto mean = weight.mean({1, 2, 3}, /*keepdim=*/true);                      // [O,1,1,1]
  auto var = weight.var({1, 2, 3}, /*unbiased=*/false, /*keepdim=*/true);    // [O,1,1,1]
  auto scale = torch::rsqrt(torch::clamp_min(var * static_cast<double>(fan_in), eps)) * gain.view({-1, 1, 1, 1});
  return weight * scale - mean * scale;  // = gain * (w - mean) / sqrt(max(var * fan_in, eps))
}

WsForm parse_ws_form(const std::string& name, const std::string& field) {
  if (name == "deepmind") return WsForm::kDeepMind;
  if (name == "timm") return WsForm::kTimm;
  throw UserError(field + ": unknown weight-standardisation form '" + name +
                  "'; valid choices: deepmind (the DeepMind reference, default), timm (timm's ScaledStdConv2d)");
}

std::string ws_form_name(WsForm form) { return form == WsForm::kTimm ? "timm" : "deepmind"; }

torch::Tensor standardize_weight_timm(const torch::Tensor& weight, const torch::Tensor& gain, double eps) {
  // weight [O, I/g, kh, kw]; per-output-channel biased statistics, as F.batch_norm(training=True) computes them.
  const double scale = 1.0 / std::sqrt(static_cast<double>(weight[0].numel()));                 // fan_in^-0.5
  auto mean = weight.mean({1, 2, 3}, /*keepdim=*/true);                                         // [O,1,1,1]
  auto var = weight.var({1, 2, 3}, /*unbiased=*/false, /*keepdim=*/true);                       // [O,1,1,1]
  return (weight - mean) * (torch::rsqrt(var + eps) * (gain.view({-1, 1, 1, 1}) * scale));     // [O, I/g, kh, kw]
}

void set_ws_form(torch::nn::Module& model, WsForm form) {
  for (const auto& m : model.modules(/*include_self=*/true))
    if (auto* conv = dynamic_cast<WSConv2dImpl*>(m.get())) conv->ws_form = form;
}

WsForm ws_form_of(torch::nn::Module& model) {
  for (const auto& m : model.modules(/*include_self=*/true))
    if (auto* conv = dynamic_cast<WSConv2dImpl*>(m.get())) return conv->ws_form;
  return WsForm::kDeepMind;
}

WSConv2dImpl::WSConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                           int64_t groups, bool init_weights)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_(kernel), stride_(stride), groups_(groups) {
  TORCH_CHECK(groups >= 1 && in_channels % groups == 0 && out_channels % groups == 0,
              "WSConv2d: channels (", in_channels, " -> ", out_channels, ") not divisible by groups ", groups);
  auto w = torch::empty({out_channels, in_channels / groups, kernel, kernel});
  if (init_weights) {
    torch::NoGradGuard no_grad;
    w.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(fan_in())));
  }
  weight = register_parameter("weight", w);
  gain = register_parameter("gain", torch::ones({out_channels}));
  bias = register_parameter("bias", torch::zeros({out_channels}));
}

namespace {

constexpr int64_t kDefaultPointwiseGemmMaxPixels = 64;

// NFSCALE_POINTWISE_GEMM_MAX_PIXELS: a non-negative integer; anything else keeps the default, with a warning that
// names the variable (read once, at start-up, where throwing is not an option).
int64_t pointwise_gemm_pixels_from_env() {
  const char* env = std::getenv("NFSCALE_POINTWISE_GEMM_MAX_PIXELS");
  if (!env) return kDefaultPointwiseGemmMaxPixels;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  if (end == env || *end != '\0' || v < 0) {
    std::fprintf(stderr, "nfscale: NFSCALE_POINTWISE_GEMM_MAX_PIXELS='%s' is not a non-negative integer; using %lld "
                 "(0 turns the GEMM route off)\n", env, static_cast<long long>(kDefaultPointwiseGemmMaxPixels));
    return kDefaultPointwiseGemmMaxPixels;
  }
  return v;
}

std::atomic<int64_t> g_pointwise_gemm_max_pixels{pointwise_gemm_pixels_from_env()};

// NFSCALE_POINTWISE_GEMM_FP32=0 keeps fp32 pointwise convs on oneDNN's convolution.
std::atomic<bool> g_pointwise_gemm_fp32{!(std::getenv("NFSCALE_POINTWISE_GEMM_FP32") &&
                                          std::string(std::getenv("NFSCALE_POINTWISE_GEMM_FP32")) == "0")};

// True when a 1x1/stride-1/ungrouped conv over x [B, C, H, W] with `out` output channels takes the GEMM route (see
// layers.h). fp32 with several intra-op threads only where the GEMM runs on oneDNN's (threaded) sgemm.
bool pointwise_gemm_applies(const torch::Tensor& x, int64_t out) {
  const bool bf16 = x.scalar_type() == torch::kBFloat16 || (cpu_bf16_autocast() && x.scalar_type() == torch::kFloat);
  const bool fp32 = x.scalar_type() == torch::kFloat && !cpu_bf16_autocast() && g_pointwise_gemm_fp32.load() &&
                    (at::get_num_threads() == 1 ||
                     (x.dim() == 4 && pointwise_linear_uses_onednn(x.size(0) * x.size(2) * x.size(3), x.size(1), out)));
  return (bf16 || fp32) && x.device().is_cpu() && x.size(2) * x.size(3) <= g_pointwise_gemm_max_pixels.load() &&
         x.suggest_memory_format() == at::MemoryFormat::ChannelsLast &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) && fused_ops_enabled();
}

}  // namespace

int64_t pointwise_gemm_max_pixels() { return g_pointwise_gemm_max_pixels.load(); }
void set_pointwise_gemm_max_pixels(int64_t pixels) { g_pointwise_gemm_max_pixels.store(std::max<int64_t>(0, pixels)); }
bool pointwise_gemm_fp32() { return g_pointwise_gemm_fp32.load(); }
void set_pointwise_gemm_fp32(bool enabled) { g_pointwise_gemm_fp32.store(enabled); }

torch::Tensor WSConv2dImpl::standardized_weight() const {
  return ws_form == WsForm::kTimm ? standardize_weight_timm(weight, gain) : standardize_weight(weight, gain);
}

torch::Tensor WSConv2dImpl::forward(const torch::Tensor& x) {
  // x [B, in, H, W]
  const SamePad ph = same_padding(x.size(2), kernel_, stride_);
  const SamePad pw = same_padding(x.size(3), kernel_, stride_);
  if (CostCounter* counter = active_counter()) {
    const int64_t out_numel = x.size(0) * out_channels_ * ph.out * pw.out;
    counter->macs += out_numel * fan_in();
    return torch::empty({x.size(0), out_channels_, ph.out, pw.out}, x.options());
  }
  const auto w_hat = standardized_weight();  // [out, in/groups, k, k]
  if (kernel_ == 1 && stride_ == 1 && groups_ == 1 && pointwise_gemm_applies(x, out_channels_)) {
    TORCH_CHECK(x.size(1) == in_channels_, "WSConv2d: expected ", in_channels_, " input channels, got ", x.sizes());
    const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
    const auto rows = x.permute({0, 2, 3, 1}).reshape({B * H * W, in_channels_});  // [BHW, in], a view (channels_last)
    const auto y = pointwise_linear(rows, w_hat.reshape({out_channels_, in_channels_}), bias);  // [BHW, out]
    return y.view({B, H, W, out_channels_}).permute({0, 3, 1, 2});  // [B, out, H, W], channels_last strides
  }
  if (w_hat.scalar_type() == x.scalar_type() &&
      grouped_conv3x3_applies(x, kernel_, stride_, groups_, in_channels_, out_channels_))
    return grouped_conv3x3(x, w_hat, bias, stride_, ph.before, pw.before, ph.out, pw.out);  // [B, out, Ho, Wo] CL
  if (w_hat.scalar_type() == x.scalar_type() &&
      dense_conv3x3_applies(x, kernel_, stride_, groups_, in_channels_, out_channels_))
    return dense_conv3x3(x, w_hat, bias, stride_);  // [B, out, Ho, Wo] channels_last
  const std::vector<int64_t> stride = {stride_, stride_}, dilation = {1, 1};
  if (ph.before == ph.after && pw.before == pw.after) {
    // Symmetric SAME padding (always the case at stride 1 with odd kernels): let the conv pad.
    const std::vector<int64_t> padding = {ph.before, pw.before};
    return torch::conv2d(x, w_hat, bias, stride, padding, dilation, groups_);
  }
  auto padded = torch::constant_pad_nd(x, {pw.before, pw.after, ph.before, ph.after}, 0.0);
  const std::vector<int64_t> no_padding = {0, 0};
  return torch::conv2d(padded, w_hat, bias, stride, no_padding, dilation, groups_);
}

DenseImpl::DenseImpl(int64_t in_features, int64_t out_features, DenseInit init, bool init_weights) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  bias = register_parameter("bias", torch::zeros({out_features}));
  if (init_weights) reset_parameters(init);
}

void DenseImpl::reset_parameters(DenseInit init) {
  torch::NoGradGuard no_grad;
  bias.zero_();
  if (init == DenseInit::kClassifier) {
    weight.normal_(0.0, 0.01);
    return;
  }
  // Truncated normal on [-2, 2] sd by inverse CDF: u ~ U(Phi(-2), Phi(2)), z = sqrt(2) erfinv(2u - 1).
  const double sd = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
  const double lo = 0.5 * std::erfc(2.0 / std::sqrt(2.0));  // Phi(-2)
  auto u = torch::empty_like(weight).uniform_(lo, 1.0 - lo);
  weight.copy_(torch::erfinv(u * 2.0 - 1.0) * (std::sqrt(2.0) * sd));
}

torch::Tensor DenseImpl::forward(const torch::Tensor& x) {
  // x [N, in] -> [N, out]
  if (CostCounter* counter = active_counter()) {
    counter->macs += x.size(0) * weight.size(0) * weight.size(1);
    return torch::empty({x.size(0), weight.size(0)}, x.options());
  }
  // The squeeze-excite layers' GEMMs ([B, C] x [C, C/2] and back) are pointwise GEMMs too: oneDNN's sgemm where it
  // pays (pointwise_linear.h), else torch::linear (OpenBLAS, single-threaded).
  return pointwise_linear(x, weight, bias);
}

SqueezeExciteImpl::SqueezeExciteImpl(int64_t channels, double ratio, bool init_weights) {
  const int64_t hidden = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(channels) * ratio));
  fc0 = register_module("fc0", Dense(channels, hidden, DenseInit::kTruncatedFanIn, init_weights));
  fc1 = register_module("fc1", Dense(hidden, channels, DenseInit::kTruncatedFanIn, init_weights));
}

torch::Tensor SqueezeExciteImpl::gate(const torch::Tensor& x) {
  // mean over H, W as sum * (1 / HW): mean's backward materialises [B, C, H, W] and divides it (one of the ~50
  // aten::div of a mini-F3 step); sum's backward is a broadcast view. Same bits when HW is a power of two.
  auto h = x.sum({2, 3}) * (1.0 / static_cast<double>(x.size(2) * x.size(3)));  // [B, C]
  h = fc0->forward(h);                       // [B, hidden]
  h = fc1->forward(active_counter() ? h : torch::relu(h));  // [B, C] (counting mode: shape only)
  return torch::sigmoid(h).unsqueeze(-1).unsqueeze(-1);  // [B, C, 1, 1]
}

torch::Tensor SqueezeExciteImpl::forward(const torch::Tensor& x) { return x * (gate(x) * 2.0); }

torch::Tensor stochastic_depth_mask(const torch::Tensor& x, double rate, bool training) {
  if (!training || rate <= 0.0) return {};
  // keep mask [B,1,...,1]: floor(keep + U[0,1)) as in the reference, i.e. Bernoulli(keep); no 1/keep rescale.
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return torch::floor(torch::rand(shape, x.options()) + (1.0 - rate));
}

torch::Tensor stochastic_depth(const torch::Tensor& x, double rate, bool training) {
  const torch::Tensor mask = stochastic_depth_mask(x, rate, training);
  return mask.defined() ? x * mask : x;
}

}  // namespace nfscale::models
