// classifier.h - the model interface used by the trainer, cost counting and checkpoints: an image classifier
// [B,C,H,W] -> logits [B,K] that describes its parameters' optimiser treatment. NFNets (nfnet.h) and ViTs (vit.h)
// implement it; each family registers its builder with the registry (family.h, registry.h).
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfscale/optim/param_spec.h"

namespace nfscale::models {

// One parameter and how the optimiser treats it: the optimiser stack's ParamSpec (optim/param_spec.h). NFNets:
// weight_decay false for gains (incl. skip_gain) and all biases, agc false only for the final classifier's weight
// (reference: experiment_nfnets.py). ViTs: weight_decay only on weight matrices (big_vision's kernels).
using ParamInfo = optim::ParamSpec;

class ClassifierImpl : public torch::nn::Module {
 public:
  ~ClassifierImpl() override = default;
  // x [B, in_channels, H, W] float -> logits [B, num_classes].
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // Replaces the head linear with a fresh one (N(0, 0.01^2) weights, zero bias) for num_classes outputs.
  virtual void reset_classifier(int64_t num_classes) = 0;
  // Stochastic-depth rate (block i of n drops with rate * i / n) and head dropout; both act only in train().
  virtual void set_regularization(double stochastic_depth_rate, double dropout) = 0;
  virtual std::vector<ParamInfo> param_info() = 0;
  // A stored tensor `name` whose shape differs from the model's (e.g. a ViT's position embedding pre-trained at
  // another resolution), made to fit when the family knows how; the default returns it unchanged (the loader then
  // reports the mismatch).
  virtual torch::Tensor adapt_loaded(const std::string& name, const torch::Tensor& stored) { return stored; }
  virtual std::string name() const = 0;
  // The smallest input side this model takes (its family's minimum for its spec; registry.h check_resolution).
  virtual int64_t min_resolution() const { return 1; }
  virtual int64_t num_classes() const = 0;
  virtual int64_t in_channels() const = 0;
};
using Classifier = std::shared_ptr<ClassifierImpl>;

struct ModelConfig {
  std::string name;              // a registry name, e.g. "F0", "F3+", "mini-F1", "ViT-S/16", or a JSON spec
                                 // ("{\"family\": \"vit\", ...}", the form `nfscale models --json` prints)
  int64_t num_classes = 1000;
  int64_t in_channels = 3;
  double stochastic_depth = 0.0;  // maximum rate (reached by the last block)
  double dropout = -1.0;          // head dropout; -1 = the spec's default
  std::string activation = "gelu";
  std::string ws_form = "deepmind";  // weight standardisation: deepmind | timm (layers.h WsForm)
  bool init_weights = true;       // false: parameters left uninitialised (counting, or before a checkpoint load)
  int64_t resolution = 0;         // input size the model is built for (ViT position-embedding grid); 0 = spec's
  std::string pos_embed_resample = "bicubic";  // ViT: "bilinear" | "bicubic" resampling of the position embedding
};

// Counted cost of one image: parameters and forward multiply-accumulates of convs and linears (incl. SE).
// Training FLOPs per image = 3 (forward + backward) x 2 (FLOPs per MAC) x macs_per_image.
struct ModelCost {
  int64_t params = 0;
  int64_t macs_per_image = 0;
  int64_t train_flops_per_image() const { return 6 * macs_per_image; }
};

}  // namespace nfscale::models
