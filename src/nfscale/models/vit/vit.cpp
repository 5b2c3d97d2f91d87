// vit.cpp - the ViT classifier (see vit.h): big_vision's initialisation, timm's parameter layout, cost counting of
// the projections, MLP, QK^T and AV in counting mode (cost_counter.h).
#include "nfscale/models/vit/vit.h"

#include <torch/torch.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "nfscale/models/cost_counter.h"
#include "nfscale/models/layers.h"
#include "nfscale/util/error.h"

namespace nfscale::models {
namespace {

// Linear layer honouring counting mode: x [..., in] -> [..., out].
torch::Tensor linear(Dense& l, const torch::Tensor& x) {
  if (CostCounter* counter = active_counter()) {
    const int64_t rows = x.numel() / x.size(-1);
    counter->macs += rows * l->weight.size(0) * l->weight.size(1);
    auto shape = x.sizes().vec();
    shape.back() = l->weight.size(0);
    return torch::empty(shape, x.options());
  }
  return torch::linear(x, l->weight, l->bias);
}

torch::Tensor layer_norm(torch::nn::LayerNorm& n, const torch::Tensor& x) {
  return active_counter() ? x : n->forward(x);  // counting mode: shape only (LayerNorm MACs are not counted)
}

// Truncated normal on [-2, 2] sd by inverse CDF, times `sd` (jax's truncated_normal initialisers).
void truncated_normal_(torch::Tensor& t, double sd) {
  const double lo = 0.5 * std::erfc(2.0 / std::sqrt(2.0));  // Phi(-2)
  auto u = torch::empty_like(t).uniform_(lo, 1.0 - lo);
  t.copy_(torch::erfinv(u * 2.0 - 1.0) * (std::sqrt(2.0) * sd));
}

// xavier_uniform for a [fan_out, fan_in] block: U(-b, b), b = sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(torch::Tensor t) {
  const double b = std::sqrt(6.0 / static_cast<double>(t.size(0) + t.size(1)));
  t.uniform_(-b, b);
}

}  // namespace

nlohmann::json to_json(const ViTSpec& s) {
  return {{"family", "vit"},
          {"name", s.name},
          {"mirrors", s.mirrors},
          {"is_ladder", s.is_ladder},
          {"patch", s.patch},
          {"width", s.width},
          {"depth", s.depth},
          {"mlp_dim", s.mlp_dim},
          {"heads", s.heads},
          {"pool", s.pool},
          {"posemb", s.posemb},
          {"gelu", s.gelu},
          {"ln_eps", s.ln_eps},
          {"train_res", s.train_res},
          {"test_res", s.test_res},
          {"dropout", s.dropout},
          {"randaugment_layers", s.randaugment_layers},
          {"randaugment_magnitude", s.randaugment_magnitude},
          {"ref_num_classes", s.ref_num_classes},
          {"ref_in_channels", s.ref_in_channels},
          {"note", s.note}};
}

ViTSpec vit_spec_from_json(const nlohmann::json& j, const std::string& origin) {
  require(j.is_object(), origin + ": a ViT spec must be a JSON object (see `nfscale models --json`)");
  ViTSpec s;
  const nlohmann::json defaults = to_json(s);
  for (auto it = j.begin(); it != j.end(); ++it) {
    require(defaults.contains(it.key()), origin + ": unknown ViT spec field '" + it.key() + "'; valid fields: " +
                                             [&] {
                                               std::string k;
                                               for (auto d = defaults.begin(); d != defaults.end(); ++d)
                                                 k += (k.empty() ? "" : ", ") + d.key();
                                               return k;
                                             }());
  }
  require(j.value("family", std::string("vit")) == "vit", origin + ": field 'family' must be \"vit\" for a ViT spec");
  try {
#define NFSCALE_VIT_FIELD(f) \
  if (j.contains(#f)) j.at(#f).get_to(s.f);
    NFSCALE_VIT_FIELD(name) NFSCALE_VIT_FIELD(mirrors) NFSCALE_VIT_FIELD(is_ladder) NFSCALE_VIT_FIELD(patch)
    NFSCALE_VIT_FIELD(width) NFSCALE_VIT_FIELD(depth) NFSCALE_VIT_FIELD(mlp_dim) NFSCALE_VIT_FIELD(heads)
    NFSCALE_VIT_FIELD(pool) NFSCALE_VIT_FIELD(posemb) NFSCALE_VIT_FIELD(gelu) NFSCALE_VIT_FIELD(ln_eps)
    NFSCALE_VIT_FIELD(train_res) NFSCALE_VIT_FIELD(test_res) NFSCALE_VIT_FIELD(dropout)
    NFSCALE_VIT_FIELD(randaugment_layers) NFSCALE_VIT_FIELD(randaugment_magnitude)
    NFSCALE_VIT_FIELD(ref_num_classes) NFSCALE_VIT_FIELD(ref_in_channels) NFSCALE_VIT_FIELD(note)
#undef NFSCALE_VIT_FIELD
  } catch (const nlohmann::json::exception& e) {
    throw UserError(origin + ": a ViT spec field has the wrong type (" + std::string(e.what()) + ")");
  }
  validate(s, origin);
  return s;
}

void validate(const ViTSpec& s, const std::string& origin) {
  auto field = [&](const char* f, const std::string& problem) { return origin + ": ViT field '" + f + "' " + problem; };
  require(s.patch >= 1, field("patch", "must be >= 1"));
  require(s.width >= 1, field("width", "must be >= 1"));
  require(s.depth >= 1, field("depth", "must be >= 1"));
  require(s.mlp_dim >= 1, field("mlp_dim", "must be >= 1"));
  require(s.heads >= 1 && s.width % s.heads == 0,
          field("heads", "must divide width (" + std::to_string(s.width) + "), got " + std::to_string(s.heads)));
  require(s.pool == "token" || s.pool == "gap", field("pool", "must be \"token\" or \"gap\", got \"" + s.pool + "\""));
  require(s.posemb == "learn" || s.posemb == "sincos2d",
          field("posemb", "must be \"learn\" or \"sincos2d\", got \"" + s.posemb + "\""));
  require(s.posemb != "sincos2d" || s.width % 4 == 0, field("posemb", "sincos2d needs width % 4 == 0"));
  require(s.gelu == "tanh" || s.gelu == "erf", field("gelu", "must be \"tanh\" or \"erf\", got \"" + s.gelu + "\""));
  require(s.ln_eps > 0, field("ln_eps", "must be > 0"));
  require(s.train_res >= s.patch && s.test_res >= s.patch, field("train_res", "and test_res must be >= patch"));
  require(s.dropout >= 0 && s.dropout < 1, field("dropout", "must be in [0, 1)"));
}

torch::Tensor posemb_sincos_2d(int64_t gh, int64_t gw, int64_t width) {
  TORCH_CHECK(width % 4 == 0, "posemb_sincos_2d: width must be divisible by 4, got ", width);
  const int64_t q = width / 4;
  auto opts = torch::dtype(torch::kDouble);
  auto omega = q > 1 ? torch::arange(q, opts) / double(q - 1) : torch::zeros({1}, opts);  // [q]
  omega = 1.0 / torch::pow(10000.0, omega);                                                  // [q]
  auto ys = torch::arange(gh, opts).repeat_interleave(gw);                                   // [gh*gw] row index
  auto xs = torch::arange(gw, opts).repeat({gh});                                            // [gh*gw] col index
  auto x = xs.unsqueeze(1) * omega.unsqueeze(0);                                             // [gh*gw, q]
  auto y = ys.unsqueeze(1) * omega.unsqueeze(0);                                             // [gh*gw, q]
  return torch::cat({x.sin(), x.cos(), y.sin(), y.cos()}, 1).unsqueeze(0).to(torch::kFloat);  // [1, gh*gw, D]
}

torch::Tensor resample_pos_embed(const torch::Tensor& pos, int64_t n_prefix, int64_t gh, int64_t gw, int64_t nh,
                                 int64_t nw, const std::string& mode) {
  require(mode == "bilinear" || mode == "bicubic",
          "pos_embed_resample: must be \"bilinear\" or \"bicubic\", got \"" + mode + "\"");
  TORCH_CHECK(pos.dim() == 3 && pos.size(1) == n_prefix + gh * gw, "resample_pos_embed: expected [1, ", n_prefix,
              " + ", gh, "*", gw, ", D], got ", pos.sizes());
  if (gh == nh && gw == nw) return pos;
  const int64_t d = pos.size(2);
  auto prefix = pos.narrow(1, 0, n_prefix);                                    // [1, n_prefix, D]
  auto grid = pos.narrow(1, n_prefix, gh * gw).reshape({1, gh, gw, d}).permute({0, 3, 1, 2});  // [1, D, gh, gw]
  namespace F = torch::nn::functional;
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{nh, nw}).align_corners(false);
  if (mode == "bilinear") {
    opts.mode(torch::kBilinear);
  } else {
    opts.mode(torch::kBicubic);
  }
  // fp64 stays fp64 (tests); anything else is interpolated in fp32 and cast back.
  const torch::Tensor work = grid.scalar_type() == torch::kDouble ? grid : grid.to(torch::kFloat);
  auto out = F::interpolate(work, opts).to(pos.scalar_type());                   // [1, D, nh, nw]
  out = out.permute({0, 2, 3, 1}).reshape({1, nh * nw, d});                         // [1, nh*nw, D]
  return torch::cat({prefix, out}, 1);                                              // [1, n_prefix + nh*nw, D]
}

AttentionImpl::AttentionImpl(int64_t width, int64_t heads_, bool init_weights) : heads(heads_) {
  qkv = register_module("qkv", Dense(width, 3 * width, DenseInit::kTruncatedFanIn, init_weights));
  proj = register_module("proj", Dense(width, width, DenseInit::kTruncatedFanIn, init_weights));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), hd = D / heads;
  if (CostCounter* counter = active_counter()) {
    linear(qkv, x);
    counter->macs += 2 * B * T * T * D;  // QK^T and AV
    return linear(proj, x);
  }
  auto h = linear(qkv, x).reshape({B, T, 3, heads, hd}).permute({2, 0, 3, 1, 4});   // [3, B, H, T, hd]
  auto q = h[0] * (1.0 / std::sqrt(static_cast<double>(hd)));                      // [B, H, T, hd]
  auto attn = torch::softmax(torch::matmul(q, h[1].transpose(-2, -1)), -1);        // [B, H, T, T]
  auto out = torch::matmul(attn.to(h.scalar_type()), h[2]);                       // [B, H, T, hd]
  return linear(proj, out.transpose(1, 2).reshape({B, T, D}));                    // [B, T, D]
}

ViTBlockImpl::ViTBlockImpl(const ViTSpec& s, bool init) : erf_gelu(s.gelu == "erf") {
  auto ln = torch::nn::LayerNormOptions({s.width}).eps(s.ln_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", Attention(s.width, s.heads, init));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp->register_module("fc1", Dense(s.width, s.mlp_dim, DenseInit::kTruncatedFanIn, init));
  fc2 = mlp->register_module("fc2", Dense(s.mlp_dim, s.width, DenseInit::kTruncatedFanIn, init));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  // x [B, T, D]
  auto a = attn->forward(layer_norm(norm1, x));                                    // [B, T, D]
  auto h = x + models::stochastic_depth(a, stochastic_depth, is_training());
  auto m = linear(fc1, layer_norm(norm2, h));                                      // [B, T, M]
  if (!active_counter()) m = torch::gelu(m, erf_gelu ? "none" : "tanh");
  m = linear(fc2, m);                                                              // [B, T, D]
  return h + models::stochastic_depth(m, stochastic_depth, is_training());
}

ViTImpl::ViTImpl(const ViTSpec& spec, const ModelConfig& config)
    : spec_(spec), num_classes_(config.num_classes), in_channels_(config.in_channels) {
  validate(spec_, "model " + (spec_.name.empty() ? std::string("spec") : spec_.name));
  require(config.num_classes >= 1, "model num_classes: must be >= 1, got " + std::to_string(config.num_classes));
  require(config.in_channels >= 1, "model in_channels: must be >= 1, got " + std::to_string(config.in_channels));
  require(config.pos_embed_resample == "bilinear" || config.pos_embed_resample == "bicubic",
          "model pos_embed_resample: must be \"bilinear\" or \"bicubic\", got \"" + config.pos_embed_resample + "\"");
  resample_mode_ = config.pos_embed_resample;
  const int64_t res = config.resolution > 0 ? config.resolution : spec_.train_res;
  require(res >= spec_.patch, "model resolution " + std::to_string(res) + ": must be >= the patch size " +
                                  std::to_string(spec_.patch));
  grid_ = res / spec_.patch;
  const int64_t D = spec_.width, P = spec_.patch;
  const bool init = config.init_weights;
  torch::NoGradGuard no_grad;
  if (spec_.pool == "token") cls_token = register_parameter("cls_token", torch::zeros({1, 1, D}));
  if (spec_.posemb == "learn") {
    pos_embed = register_parameter("pos_embed", torch::empty({1, num_prefix_tokens() + grid_ * grid_, D}));
    if (init) pos_embed.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(D)));  // big_vision "learn"
  }
  auto patch = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  auto proj = patch->register_module("proj", std::make_shared<torch::nn::Module>());
  patch_weight = proj->register_parameter("weight", torch::empty({D, in_channels_, P, P}));
  patch_bias = proj->register_parameter("bias", torch::zeros({D}));
  // lecun_normal: truncated normal with the variance of N(0, 1/fan_in) (sd / .87962566 before truncation).
  if (init) truncated_normal_(patch_weight, std::sqrt(1.0 / double(in_channels_ * P * P)) / .87962566103423978);
  auto blocks = register_module("blocks", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < spec_.depth; ++i) {
    auto b = blocks->register_module(std::to_string(i), ViTBlock(spec_, init));
    blocks_.push_back(b);
    if (!init) continue;
    for (int64_t k = 0; k < 3; ++k) xavier_uniform_(b->attn->qkv->weight.narrow(0, k * D, D));  // q, k, v: D x D each
    b->attn->qkv->bias.zero_();
    xavier_uniform_(b->attn->proj->weight);
    b->attn->proj->bias.zero_();
    xavier_uniform_(b->fc1->weight);
    xavier_uniform_(b->fc2->weight);
    b->fc1->bias.normal_(0.0, 1e-6);
    b->fc2->bias.normal_(0.0, 1e-6);
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D}).eps(spec_.ln_eps)));
  head_ = register_module("head", Dense(D, num_classes_, DenseInit::kClassifier, init));
  init_head();
  set_regularization(config.stochastic_depth, config.dropout < 0.0 ? spec_.dropout : config.dropout);
}

void ViTImpl::init_head() {
  torch::NoGradGuard no_grad;
  head_->weight.zero_();  // big_vision head_zeroinit
  head_->bias.zero_();
}

void ViTImpl::set_regularization(double stochastic_depth_rate, double dropout) {
  require(stochastic_depth_rate >= 0.0 && stochastic_depth_rate < 1.0,
          "model stochastic_depth: must be in [0, 1), got " + std::to_string(stochastic_depth_rate));
  require(dropout >= 0.0 && dropout < 1.0, "model dropout: must be in [0, 1), got " + std::to_string(dropout));
  const auto n = static_cast<double>(blocks_.size());
  for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i]->stochastic_depth = stochastic_depth_rate * double(i) / n;
  dropout_ = dropout;
}

torch::Tensor ViTImpl::forward_features(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == in_channels_, name(), ": expected input [B, ", in_channels_,
              ", H, W], got ", x.sizes());
  const int64_t B = x.size(0), D = spec_.width, P = spec_.patch;
  const int64_t gh = x.size(2) / P, gw = x.size(3) / P;
  TORCH_CHECK(gh >= 1 && gw >= 1, name(), ": input ", x.sizes(), " is smaller than one ", P, "x", P, " patch");
  const int64_t n_prefix = num_prefix_tokens(), T = n_prefix + gh * gw;
  torch::Tensor h;  // [B, T, D]
  if (CostCounter* counter = active_counter()) {
    counter->macs += B * gh * gw * D * in_channels_ * P * P;  // patch embedding conv
    h = torch::empty({B, T, D}, x.options());
  } else {
    auto p = torch::conv2d(x, patch_weight, patch_bias, {P, P});              // [B, D, gh, gw] (VALID)
    h = p.flatten(2).transpose(1, 2);                                         // [B, gh*gw, D]
    if (n_prefix) h = torch::cat({cls_token.to(h.scalar_type()).expand({B, 1, D}), h}, 1);  // [B, T, D]
    if (spec_.posemb == "learn") {
      h = h + resample_pos_embed(pos_embed, n_prefix, grid_, grid_, gh, gw, resample_mode_);  // [1, T, D] broadcast
    } else {
      auto pe = posemb_sincos_2d(gh, gw, D).to(h.device());                   // [1, gh*gw, D]
      if (n_prefix) pe = torch::cat({torch::zeros({1, n_prefix, D}, pe.options()), pe}, 1);
      h = h + pe;
    }
  }
  for (auto& b : blocks_) h = b->forward(h);                                  // [B, T, D]
  return layer_norm(norm_, h);                                                // [B, T, D]
}

torch::Tensor ViTImpl::forward(const torch::Tensor& x) {
  auto h = forward_features(x);                                               // [B, T, D]
  auto pooled = spec_.pool == "token" ? h.select(1, 0) : (active_counter() ? h.select(1, 0) : h.mean(1));  // [B, D]
  if (!active_counter()) pooled = torch::dropout(pooled, dropout_, is_training());
  return linear(head_, pooled);                                               // [B, K]
}

void ViTImpl::reset_classifier(int64_t num_classes) {
  require(num_classes >= 1, "model num_classes: must be >= 1, got " + std::to_string(num_classes));
  num_classes_ = num_classes;
  head_ = Dense(spec_.width, num_classes_, DenseInit::kClassifier, true);
  replace_module("head", head_);
  init_head();
}

std::vector<ParamInfo> ViTImpl::param_info() {
  std::vector<ParamInfo> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    ParamInfo p;
    p.name = item.key();
    p.param = item.value();
    // big_vision's wd_mults default ".*/kernel$": dense and conv kernels; not biases, LayerNorm, cls, pos_embed.
    p.weight_decay = p.param.dim() >= 2 && p.name != "pos_embed" && p.name != "cls_token";
    p.agc = p.name != "head.weight";
    out.push_back(std::move(p));
  }
  return out;
}

torch::Tensor ViTImpl::adapt_loaded(const std::string& name, const torch::Tensor& stored) {
  if (name != "pos_embed" || !pos_embed.defined() || stored.dim() != 3 || stored.size(2) != spec_.width)
    return stored;
  const int64_t n = stored.size(1) - num_prefix_tokens();
  const auto g = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(n))));
  if (n <= 0 || g * g != n) return stored;  // not a square grid: left for the loader to report
  torch::NoGradGuard no_grad;
  return resample_pos_embed(stored, num_prefix_tokens(), g, g, grid_, grid_, resample_mode_);
}

}  // namespace nfscale::models
