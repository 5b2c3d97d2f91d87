// layers.h - NFNet building blocks: gamma-scaled activations, TensorFlow 'SAME' padding, the scaled
// weight-standardised convolution (WSConv2d), a dense layer with the reference inits, squeeze-excite and
// per-sample stochastic depth. All tensors are NCHW float; shapes are stated per function.
// Convs and dense layers honour counting mode (cost_counter.h).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace nfscale::models {

// ---- activations --------------------------------------------------------------------------------------------
// kGelu is GELU's tanh approximation (the DeepMind reference, jax.nn.gelu's default); kGeluErf is the exact erf
// form (PyTorch's nn.GELU, which timm's NFNets and ViTs use), same gamma.
enum class Activation { kGelu, kRelu, kSilu, kGeluErf };

// "gelu" | "relu" | "silu" | "gelu_erf"; UserError naming `field` and the valid choices otherwise.
Activation parse_activation(const std::string& name, const std::string& field = "activation");
std::string activation_name(Activation a);
// Variance-preserving gamma of the reference code (gelu 1.7015043497085571, relu 1.7139588594436646,
// silu 1.7881293296813965).
double activation_gamma(Activation a);
// gamma * act(x); any shape. GELU is the tanh approximation, as jax.nn.gelu's default in the reference code.
// With fused ops on (fused_ops.h), GELU is one fused kernel with its own backward.
torch::Tensor scaled_activation(const torch::Tensor& x, Activation a);
// (gamma * act(x)) * post_scale (the block's beta pre-scale). Fused GELU folds gamma * post_scale into one
// multiply (one fp32 rounding instead of two; in bf16, one bf16 rounding instead of three).
torch::Tensor scaled_activation(const torch::Tensor& x, Activation a, double post_scale);

// ---- TensorFlow 'SAME' padding -----------------------------------------------------------------------------
// For an input extent `in`, kernel k and stride s: out = ceil(in / s),
// total = max((out - 1) * s + k - in, 0), before = total / 2, after = total - before (extra pixel at the end).
struct SamePad {
  int64_t out = 0, before = 0, after = 0;
};
SamePad same_padding(int64_t in, int64_t kernel, int64_t stride);

// 2x2 / stride-2 average pool with 'SAME' padding (padded cells excluded from the mean, as TF does).
// x [B,C,H,W] -> [B,C,ceil(H/2),ceil(W/2)].
torch::Tensor avg_pool_2x2_same(const torch::Tensor& x);

// ---- scaled weight standardisation -------------------------------------------------------------------------
// w [O, I/g, kh, kw], gain [O] -> w_hat [O, I/g, kh, kw]:
//   w_hat = gain * (w - mean) / sqrt(max(var * fan_in, eps)), mean/var (biased) over (I/g, kh, kw),
//   fan_in = I/g * kh * kw.
torch::Tensor standardize_weight(const torch::Tensor& weight, const torch::Tensor& gain, double eps = 1e-4);
// The two forms of scaled WS, a stored property of a model (ModelConfig::ws_form, config.json, exported metadata):
//   kDeepMind (default): gain * (w - mean) * rsqrt(max(var * fan_in, 1e-4))   - the DeepMind JAX reference;
//   kTimm:               gain * (w - mean) / sqrt(var + 1e-5) * fan_in^-0.5  - timm's ScaledStdConv2d(Same),
// needed to reproduce timm's outputs from timm weights (they differ by a fraction of a percent per layer).
enum class WsForm { kDeepMind, kTimm };
WsForm parse_ws_form(const std::string& name, const std::string& field = "ws_form");  // "deepmind" | "timm"
std::string ws_form_name(WsForm form);
// timm's form: w [O, I/g, kh, kw], gain [O] -> w_hat [O, I/g, kh, kw] (ATen ops; no fused kernel).
torch::Tensor standardize_weight_timm(const torch::Tensor& weight, const torch::Tensor& gain, double eps = 1e-5);

// Pointwise (1x1, stride 1, ungrouped) convolutions on channels_last bf16 maps of at most this many pixels (H*W)
// run as one GEMM, [B*H*W, in] x [in, out], through at::linear (oneDNN's bf16 matmul) instead of oneDNN's
// convolution: measured 1.3x (4x4 maps) to 2.5x (2x2) faster forward + backward for F0's 1536<->768 layers, and up to
// 5x for the mini ladder's 4x4 layers at batch 128 (docs/performance.md). Same arithmetic (bf16 products, fp32
// accumulation); the conv route stays for fp32 with more than one intra-op thread where the GEMM would be
// single-threaded OpenBLAS (see pointwise_gemm_fp32), NCHW, larger maps, and whenever the fused ops are off
// (fused_ops.h). Default 64; 0 disables. Env NFSCALE_POINTWISE_GEMM_MAX_PIXELS
// sets the initial value.
int64_t pointwise_gemm_max_pixels();
void set_pointwise_gemm_max_pixels(int64_t pixels);
// fp32 too (not under bf16 autocast), when LibTorch runs one intra-op thread (the study's workers), or at any thread
// count where the GEMM runs on oneDNN's threaded sgemm (pointwise_linear.h: >= 16 channels each side and >= 2048
// rows or >= 64 channels; LibTorch's own fp32 GEMM is single-threaded OpenBLAS here). Default on;
// NFSCALE_POINTWISE_GEMM_FP32=0 turns it off.
bool pointwise_gemm_fp32();
void set_pointwise_gemm_fp32(bool enabled);

// Conv2d with scaled WS, learnable per-output gain (init 1) and bias (init 0), TF 'SAME' padding.
// Weight init: variance scaling (fan_in, normal, scale 1) = N(0, 1/fan_in). With init_weights=false the
// weight is left uninitialised (torch::empty): for counting or before loading a checkpoint.
// Forward routes: grouped_conv3x3.h (3x3, 16 channels per group, channels_last fp32), the pointwise GEMM above,
// else torch::conv2d.
class WSConv2dImpl : public torch::nn::Module {
 public:
  WSConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
               bool init_weights = true);
  // x [B, in, H, W] -> [B, out, ceil(H/stride), ceil(W/stride)].
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor standardized_weight() const;  // [out, in/groups, k, k], in ws_form's form
  int64_t fan_in() const { return in_channels_ / groups_ * kernel_ * kernel_; }
  WsForm ws_form = WsForm::kDeepMind;

  torch::Tensor weight, gain, bias;

 private:
  int64_t in_channels_, out_channels_, kernel_, stride_, groups_;
};
TORCH_MODULE(WSConv2d);
// Sets the WS form of every WSConv2d in `model` (the builder applies ModelConfig::ws_form this way).
void set_ws_form(torch::nn::Module& model, WsForm form);
// The WS form of the first WSConv2d in `model` (kDeepMind when it has none).
WsForm ws_form_of(torch::nn::Module& model);

// Fully connected layer y = x W^T + b with one of the reference initialisations.
enum class DenseInit {
  kTruncatedFanIn,  // haiku Linear default: truncated normal (+-2 sd), sd = 1/sqrt(fan_in); bias 0
  kClassifier,      // NFNet head: N(0, 0.01^2); bias 0
};
class DenseImpl : public torch::nn::Module {
 public:
  DenseImpl(int64_t in_features, int64_t out_features, DenseInit init, bool init_weights = true);
  // x [N, in] -> [N, out].
  torch::Tensor forward(const torch::Tensor& x);
  void reset_parameters(DenseInit init);

  torch::Tensor weight, bias;  // [out, in], [out]
};
TORCH_MODULE(Dense);

// Squeeze-excite: gate = sigmoid(fc1(relu(fc0(mean_hw(x))))), hidden = max(1, int(C * ratio)).
class SqueezeExciteImpl : public torch::nn::Module {
 public:
  SqueezeExciteImpl(int64_t channels, double ratio, bool init_weights = true);
  // x [B,C,H,W] -> gate [B,C,1,1] in (0,1).
  torch::Tensor gate(const torch::Tensor& x);
  // x [B,C,H,W] -> 2 * gate * x (the factor 2 keeps the variance at init), [B,C,H,W].
  torch::Tensor forward(const torch::Tensor& x);

  Dense fc0{nullptr}, fc1{nullptr};
};
TORCH_MODULE(SqueezeExcite);

// Per-sample stochastic depth without 1/keep rescaling (the reference code): in training each sample's
// residual branch is zeroed with probability `rate`; identity in eval or when rate <= 0.
// x [B,...] -> same shape. Uses the global torch generator (seed it for reproducibility).
torch::Tensor stochastic_depth(const torch::Tensor& x, double rate, bool training);
// The keep mask stochastic_depth multiplies by: [B,1,...,1] in x's dtype, drawn exactly as stochastic_depth draws it
// (same random stream use); undefined when it would be the identity.
torch::Tensor stochastic_depth_mask(const torch::Tensor& x, double rate, bool training);

}  // namespace nfscale::models
