// nfnet.cpp - NFNet-F blocks and network (see nfnet.h), built from a ModelSpecInfo row; follows the reference
// JAX code (deepmind-research nfnets/nfnet.py, base.py) block for block.
#include "nfscale/models/nfnet/nfnet.h"

#include <torch/torch.h>

#include <cmath>

#include "nfscale/models/cost_counter.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/models/squeeze_excite_tail.h"
#include "nfscale/util/error.h"

namespace nfscale::models {

NFBlockImpl::NFBlockImpl(const NFBlockOptions& o) : options_(o) {
  const bool init = o.init_weights;
  const int64_t w = o.bottleneck_width;
  conv0 = register_module("conv0", WSConv2d(o.in_channels, w, 1, 1, 1, init));
  conv1 = register_module("conv1", WSConv2d(w, w, 3, o.stride, o.groups, init));
  conv1b = register_module("conv1b", WSConv2d(w, w, 3, 1, o.groups, init));
  conv2 = register_module("conv2", WSConv2d(w, o.out_channels, 1, 1, 1, init));
  if (o.stride > 1 || o.in_channels != o.out_channels) {
    conv_shortcut = register_module("conv_shortcut", WSConv2d(o.in_channels, o.out_channels, 1, 1, 1, init));
  }
  se = register_module("se", SqueezeExcite(o.out_channels, o.se_ratio, init));
  skip_gain = register_parameter("skip_gain", torch::zeros({}));
}

torch::Tensor NFBlockImpl::residual_branch(const torch::Tensor& out) {
  return se->forward(branch_before_se(out));               // 2 * sigmoid gate * h
}

torch::Tensor NFBlockImpl::branch_before_se(const torch::Tensor& out) {
  const Activation a = options_.activation;
  auto h = conv0->forward(out);                             // [B, w, H, W]
  h = conv1->forward(scaled_activation(h, a));              // [B, w, H/s, W/s] grouped
  h = conv1b->forward(scaled_activation(h, a));             // [B, w, H/s, W/s] grouped
  return conv2->forward(scaled_activation(h, a));           // [B, out, H/s, W/s]
}

torch::Tensor NFBlockImpl::forward(const torch::Tensor& x) {
  // x [B, in, H, W]
  auto out = scaled_activation(x, options_.activation, options_.beta);  // [B, in, H, W]
  torch::Tensor shortcut = x;
  if (options_.stride > 1) {
    shortcut = conv_shortcut->forward(avg_pool_2x2_same(out));  // [B, out, H/2, W/2]
  } else if (has_projection()) {
    shortcut = conv_shortcut->forward(out);                      // [B, out, H, W]
  }
  if (fused_ops_enabled() && !active_counter() && x.device().is_cpu()) {  // CPU kernels; other devices: ATen below
    auto h = branch_before_se(out);                                  // [B, out, H/s, W/s]
    // (the gate draws no random numbers: the mask is the same draw as on the unfused path)
    auto mask = stochastic_depth_mask(h, options_.stochastic_depth, is_training());  // [B,1,1,1] or undefined
    if (squeeze_excite_tail_applies(h))                              // fp32/fp64: gate and tail as one node
      return squeeze_excite_tail(shortcut, h, se->fc0->weight, se->fc0->bias, se->fc1->weight, se->fc1->bias, mask,
                                 skip_gain, options_.alpha);
    auto gate = se->gate(h).flatten(1);                              // [B, out]
    // shortcut + alpha * skip_gain * 2 * gate * mask * h in one pass (same random draws as the unfused path).
    return fused_residual_tail(shortcut, h, gate, mask, skip_gain, options_.alpha);
  }
  auto branch = residual_branch(out);                            // [B, out, H/s, W/s]
  branch = stochastic_depth(branch, options_.stochastic_depth, is_training());
  // Element-wise tail: branch * skip_gain * alpha + shortcut (a candidate for one fused op).
  return branch * skip_gain * options_.alpha + shortcut;
}

NFNetImpl::NFNetImpl(const ModelSpecInfo& spec, const ModelConfig& config)
    : spec_(spec),
      activation_(parse_activation(config.activation, "model activation")),
      num_classes_(config.num_classes),
      in_channels_(config.in_channels) {
  require(config.num_classes >= 1,
          "model num_classes: must be >= 1, got " + std::to_string(config.num_classes));
  require(config.in_channels >= 1,
          "model in_channels: must be >= 1, got " + std::to_string(config.in_channels));
  const bool init = config.init_weights;

  // Stem: 3x3 convs stem_widths[0] (stride 2), [1], [2], widths[0]/2 (stride 2).
  std::vector<int64_t> stem_out = spec.stem_widths;
  stem_out.push_back(spec.widths.at(0) / 2);
  int64_t ch = config.in_channels;
  for (size_t i = 0; i < stem_out.size(); ++i) {
    const int64_t stride = (i == 0 || i + 1 == stem_out.size()) ? 2 : 1;
    stem_.push_back(register_module("stem_conv" + std::to_string(i), WSConv2d(ch, stem_out[i], 3, stride, 1, init)));
    ch = stem_out[i];
  }

  // Body: expected std resets to 1 after each stage's first block (which still grows it once).
  const int64_t strides[4] = {1, 2, 2, 2};
  double expected_std = 1.0;
  for (size_t s = 0; s < spec.depths.size(); ++s) {
    for (int64_t b = 0; b < spec.depths[s]; ++b) {
      NFBlockOptions o;
      o.in_channels = ch;
      o.out_channels = spec.widths[s];
      o.stride = b == 0 ? strides[s] : 1;
      const BottleneckShape shape = bottleneck_shape(spec, o.out_channels);
      o.bottleneck_width = shape.width;
      o.groups = shape.groups;
      o.se_ratio = spec.se_ratio;
      o.alpha = spec.alpha;
      o.beta = 1.0 / expected_std;
      o.activation = activation_;
      o.init_weights = init;
      expected_std_.push_back(expected_std);
      blocks_.push_back(register_module("block" + std::to_string(blocks_.size()), NFBlock(o)));
      ch = o.out_channels;
      if (b == 0) expected_std = 1.0;
      expected_std = std::sqrt(expected_std * expected_std + spec.alpha * spec.alpha);
    }
  }

  // Head: 1x1 conv to final_conv_mult * ch, act, mean pool, dropout, linear.
  final_channels_ = spec.final_conv_mult * ch;
  final_conv_ = register_module("final_conv", WSConv2d(ch, final_channels_, 1, 1, 1, init));
  fc_ = register_module("fc", Dense(final_channels_, num_classes_, DenseInit::kClassifier, init));
  set_regularization(config.stochastic_depth, config.dropout < 0.0 ? spec.dropout : config.dropout);
}

void NFNetImpl::set_regularization(double stochastic_depth_rate, double dropout) {
  require(stochastic_depth_rate >= 0.0 && stochastic_depth_rate < 1.0,
          "model stochastic_depth: must be in [0, 1), got " + std::to_string(stochastic_depth_rate));
  require(dropout >= 0.0 && dropout < 1.0, "model dropout: must be in [0, 1), got " + std::to_string(dropout));
  const auto n = static_cast<double>(blocks_.size());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    blocks_[i]->set_stochastic_depth(stochastic_depth_rate * static_cast<double>(i) / n);
  }
  dropout_ = dropout;
}

torch::Tensor NFNetImpl::forward(const torch::Tensor& x) { return forward_logged(x, nullptr); }

torch::Tensor NFNetImpl::forward_logged(const torch::Tensor& x, std::vector<torch::Tensor>* block_inputs) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == in_channels_, name(), ": expected input [B, ", in_channels_,
              ", H, W], got ", x.sizes());
  auto h = x;                                                   // [B, C, H, W]
  for (size_t i = 0; i < stem_.size(); ++i) {
    h = stem_[i]->forward(h);
    if (i + 1 < stem_.size()) h = scaled_activation(h, activation_);
  }                                                             // [B, widths[0]/2, H/4, W/4]
  for (auto& block : blocks_) {
    if (block_inputs) block_inputs->push_back(h);
    h = block->forward(h);
  }                                                             // [B, widths[-1], H/32, W/32]
  h = scaled_activation(final_conv_->forward(h), activation_);  // [B, final, H/32, W/32]
  auto pooled = h.mean({2, 3});                                 // [B, final]
  pooled = torch::dropout(pooled, dropout_, is_training());
  return fc_->forward(pooled);                                  // [B, K]
}

void NFNetImpl::reset_classifier(int64_t num_classes) {
  require(num_classes >= 1, "model num_classes: must be >= 1, got " + std::to_string(num_classes));
  num_classes_ = num_classes;
  fc_ = Dense(final_channels_, num_classes_, DenseInit::kClassifier, true);
  replace_module("fc", fc_);
}

std::vector<ParamInfo> NFNetImpl::param_info() {
  std::vector<ParamInfo> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& key = item.key();
    auto ends_with = [&](const std::string& suffix) {
      return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    ParamInfo p;
    p.name = key;
    p.param = item.value();
    p.weight_decay = !(ends_with("gain") || ends_with("bias"));  // gain, skip_gain, every bias
    p.agc = key != "fc.weight";
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace nfscale::models
