// vit.h - the Vision Transformer classifier (big_vision / timm ViT) built from a ViTSpec row: patch embedding,
// position embedding (learned or 2-D sin-cos), pre-LN blocks of multi-head self-attention and GELU MLP, final
// LayerNorm, 'gap' or 'token' pooling and a linear head. Parameter names follow timm's, so timm weights load by name.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/models/classifier.h"
#include "nfscale/models/layers.h"

namespace nfscale::models {

// One ViT's architecture and recipe defaults; the builder reads only this (no per-model code).
struct ViTSpec {
  std::string name;              // e.g. "ViT-S/16", "mini-ViT-S"; "" for a shape given only as JSON
  std::string mirrors;           // ladder: the paper member it mirrors ("ViT-S/16"); members: itself
  bool is_ladder = false;
  int64_t patch = 16;            // patch size P (conv kernel = stride = P, VALID)
  int64_t width = 192;           // D
  int64_t depth = 12;            // L blocks
  int64_t mlp_dim = 768;         // M
  int64_t heads = 3;             // H; D % H == 0
  std::string pool = "token";    // "token" (class token, timm layout: concatenated before the position embedding)
                                 // | "gap" (mean over patch tokens after the final LayerNorm, big_vision's default)
  std::string posemb = "learn";  // "learn" | "sincos2d" (fixed, big_vision; needs D % 4 == 0)
  std::string gelu = "tanh";     // "tanh" (big_vision, jax default) | "erf" (timm)
  double ln_eps = 1e-6;
  int64_t train_res = 224, test_res = 224;
  double dropout = 0.0;          // head dropout default (none in the big_vision recipe)
  int64_t randaugment_layers = 2, randaugment_magnitude = 10;
  int64_t ref_num_classes = 1000, ref_in_channels = 3;
  std::string note;
};

// The JSON form of a spec (every field above, plus "family": "vit"); vit_spec_from_json reads it back and throws
// UserError naming `origin` and the field for a missing/unknown/invalid field.
nlohmann::json to_json(const ViTSpec& spec);
ViTSpec vit_spec_from_json(const nlohmann::json& j, const std::string& origin);
// UserError naming the field unless the spec is buildable (positive sizes, D % H == 0, known options).
void validate(const ViTSpec& spec, const std::string& origin);

// Fixed 2-D sin-cos position embedding of big_vision (posemb_sincos_2d, temperature 10000): for a gh x gw grid,
// omega_k = 1 / 10000^(k / (D/4 - 1)), k < D/4; row (y, x) = [sin(x omega), cos(x omega), sin(y omega), cos(y omega)].
// -> [1, gh*gw, D] float.
torch::Tensor posemb_sincos_2d(int64_t gh, int64_t gw, int64_t width);

// Resamples a learned position embedding to a new grid in 2-D: pos [1, n_prefix + gh*gw, D] -> [1, n_prefix + nh*nw,
// D]; the n_prefix rows (the class token's) are kept as they are; the grid is interpolated with `mode` "bilinear" or
// "bicubic" (align_corners=false, as timm's resample_abs_pos_embed). Same grid: returned unchanged.
torch::Tensor resample_pos_embed(const torch::Tensor& pos, int64_t n_prefix, int64_t gh, int64_t gw, int64_t nh,
                                 int64_t nw, const std::string& mode);

// Multi-head self-attention, one qkv projection (timm layout: rows q, k, v of [3D, D]) and an output projection.
class AttentionImpl : public torch::nn::Module {
 public:
  // init_weights=false leaves the projections uninitialised (counting, or before a load: no cost even for ViT-G).
  AttentionImpl(int64_t width, int64_t heads, bool init_weights = true);
  // x [B, T, D] -> [B, T, D]: softmax(q k^T / sqrt(D/H)) v per head, then proj. In counting mode adds the MACs of
  // both projections and of QK^T and AV (2 T^2 D per image).
  torch::Tensor forward(const torch::Tensor& x);

  Dense qkv{nullptr}, proj{nullptr};  // [3D, D], [D, D] (layers.h: y = x W^T + b, any leading dims)
  int64_t heads;
};
TORCH_MODULE(Attention);

class ViTBlockImpl : public torch::nn::Module {
 public:
  ViTBlockImpl(const ViTSpec& spec, bool init_weights = true);
  // x [B, T, D] -> x + sd(attn(norm1(x))), then + sd(mlp(norm2(.))) with per-sample stochastic depth (layers.h).
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Dense fc1{nullptr}, fc2{nullptr};  // registered as mlp.fc1 / mlp.fc2
  double stochastic_depth = 0.0;
  bool erf_gelu = false;
};
TORCH_MODULE(ViTBlock);

class ViTImpl : public ClassifierImpl {
 public:
  // The learned position embedding is built for config.resolution (0 = spec.train_res); other input sizes resample
  // it on the fly with config.pos_embed_resample.
  ViTImpl(const ViTSpec& spec, const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x) override;
  void reset_classifier(int64_t num_classes) override;
  void set_regularization(double stochastic_depth_rate, double dropout) override;
  // weight_decay on weight matrices only (patch kernel, qkv, proj, MLP, head: big_vision's ".*/kernel$"), agc off
  // only for the head weight.
  std::vector<ParamInfo> param_info() override;
  // pos_embed of another grid (a checkpoint pre-trained at another resolution) is resampled to this model's grid.
  torch::Tensor adapt_loaded(const std::string& name, const torch::Tensor& stored) override;
  std::string name() const override { return spec_.name; }
  int64_t min_resolution() const override { return spec_.patch; }
  int64_t num_classes() const override { return num_classes_; }
  int64_t in_channels() const override { return in_channels_; }

  const ViTSpec& spec() const { return spec_; }
  int64_t grid() const { return grid_; }              // position-embedding grid side (learned embedding)
  int64_t num_prefix_tokens() const { return spec_.pool == "token" ? 1 : 0; }
  // The tokens after the final LayerNorm: x [B, C, H, W] -> [B, T, D].
  torch::Tensor forward_features(const torch::Tensor& x);
  ViTBlock& block(int64_t i) { return blocks_.at(static_cast<size_t>(i)); }

  torch::Tensor cls_token, pos_embed;  // [1,1,D] (token pool only), [1, prefix + grid^2, D] (learned only)
  torch::Tensor patch_weight, patch_bias;  // patch_embed.proj.{weight [D,C,P,P], bias [D]}

 private:
  void init_head();
  ViTSpec spec_;
  int64_t num_classes_, in_channels_, grid_;
  double dropout_ = 0.0;
  std::string resample_mode_;
  std::vector<ViTBlock> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  Dense head_{nullptr};
};
TORCH_MODULE(ViT);

}  // namespace nfscale::models
