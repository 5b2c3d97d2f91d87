// nfnet.h - the Normalizer-Free ResNet (NFNet-F) classifier built from a ModelSpecInfo: stem, NF bottleneck
// blocks with squeeze-excite, skip gain and stochastic depth, and the head. Exposed for tests and tooling;
// everything else should go through build_model() in registry.h.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/models/classifier.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/nfnet/nfnet_family.h"

namespace nfscale::models {

struct NFBlockOptions {
  int64_t in_channels = 0, out_channels = 0, stride = 1;
  int64_t bottleneck_width = 0, groups = 1;
  double se_ratio = 0.5;
  double alpha = 0.2;
  double beta = 1.0;              // 1 / expected std of the block's input
  double stochastic_depth = 0.0;  // this block's drop rate
  Activation activation = Activation::kGelu;
  bool init_weights = true;
};

// NF bottleneck block:
//   out = act(x) * beta
//   shortcut = x | conv_shortcut(out) | conv_shortcut(avgpool2x2_same(out)) (projection iff stride>1 or
//              channels change)
//   branch = conv2(act(conv1b(act(conv1(act(conv0(out))))))), SE, stochastic depth, * skip_gain
//   return branch * alpha + shortcut
// With fused ops on (fused_ops.h), act(x)*beta is one fused GELU, and SE gating, stochastic depth, skip gain,
// alpha and the residual add are one fused op (fused_residual_tail); for fp32/fp64 maps outside autocast the SE
// gate's own layers join that op too (squeeze_excite_tail.h), one autograd node from the branch to the block's output.
class NFBlockImpl : public torch::nn::Module {
 public:
  explicit NFBlockImpl(const NFBlockOptions& options);
  // x [B, in, H, W] -> [B, out, ceil(H/stride), ceil(W/stride)].
  torch::Tensor forward(const torch::Tensor& x);
  // The residual branch before stochastic depth and skip gain, from the pre-activated input out = act(x)*beta.
  // out [B, in, H, W] -> [B, out, H/stride, W/stride].
  torch::Tensor residual_branch(const torch::Tensor& out);
  // The branch up to conv2, before squeeze-excite: out [B, in, H, W] -> [B, out, H/stride, W/stride].
  torch::Tensor branch_before_se(const torch::Tensor& out);
  const NFBlockOptions& options() const { return options_; }
  void set_stochastic_depth(double rate) { options_.stochastic_depth = rate; }
  bool has_projection() const { return !conv_shortcut.is_empty(); }

  WSConv2d conv0{nullptr}, conv1{nullptr}, conv1b{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  SqueezeExcite se{nullptr};
  torch::Tensor skip_gain;  // scalar, init 0

 private:
  NFBlockOptions options_;
};
TORCH_MODULE(NFBlock);

class NFNetImpl : public ClassifierImpl {
 public:
  NFNetImpl(const ModelSpecInfo& spec, const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x) override;
  // As forward; if block_inputs is given, appends the residual stream entering each block ([B,C,H,W] each).
  torch::Tensor forward_logged(const torch::Tensor& x, std::vector<torch::Tensor>* block_inputs);
  void reset_classifier(int64_t num_classes) override;
  void set_regularization(double stochastic_depth_rate, double dropout) override;
  std::vector<ParamInfo> param_info() override;
  std::string name() const override { return spec_.name; }
  int64_t min_resolution() const override { return kMinResolution; }
  int64_t num_classes() const override { return num_classes_; }
  int64_t in_channels() const override { return in_channels_; }

  const ModelSpecInfo& spec() const { return spec_; }
  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  NFBlock& block(int64_t i) { return blocks_.at(static_cast<size_t>(i)); }
  // Expected std of the residual stream entering each block at init (the reference's bookkeeping).
  const std::vector<double>& expected_input_std() const { return expected_std_; }
  double dropout() const { return dropout_; }

 private:
  ModelSpecInfo spec_;
  Activation activation_;
  int64_t num_classes_, in_channels_, final_channels_;
  double dropout_ = 0.0;
  std::vector<WSConv2d> stem_;
  std::vector<NFBlock> blocks_;
  std::vector<double> expected_std_;
  WSConv2d final_conv_{nullptr};
  Dense fc_{nullptr};
};
TORCH_MODULE(NFNet);

}  // namespace nfscale::models
