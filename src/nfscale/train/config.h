// config.h - the complete, resolved configuration of one training run (pre-training or fine-tuning).
// It is written to <run_dir>/config.json so any run can be reproduced, and read back on --resume.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace nfscale::train {

struct TrainConfig {
  // What to train.
  std::string model;             // registry name, e.g. "mini-F0", "F0", "mini-ViT-S", or a JSON model spec
  std::string data = "fashion-mnist";       // data spec "kind[:path]" for the training set
  std::string test_data;         // data spec for the test set ("" = same kind, split test, when available)
  int64_t holdout = 0;           // examples carved from the training set for held-out evaluation (0 = none)
  int64_t train_examples = 0;    // use only this many training examples (a fixed seeded subset; 0 = all)
  bool eval_ema = false;         // also evaluate the EMA weights (reported as ema_* in metrics)
  int64_t resolution = 32;       // train resolution (px)
  int64_t eval_resolution = 0;   // eval resolution (0 = same as train)
  int64_t channels = 0;          // model input channels (0 = the dataset's)

  // Budget and batch.
  double epochs = 1.0;           // epoch budget, may be fractional: steps = ceil(epochs * N / batch)
  int64_t batch = 128;           // effective batch (examples per optimiser step)
  int64_t micro_batch = 0;       // examples per forward/backward (0 = batch); batch must be a multiple

  // Optimisation (the model family's recipe; see docs/optim.md). "Family default" values are resolved when the run
  // starts (resolve_recipe in trainer.h) and the run dir's config.json stores the resolved ones.
  std::string optimizer = "auto";  // auto (the family's: sgd_agc for NFNets, adamw for ViTs) | sgd_agc | adamw
  double lr = 0.0;               // base LR at batch 256: LR = lr * batch / 256 (unless absolute_lr); 0 = family
                                 // default (NFNet 0.1, raised below batch 4096 to keep the absolute LR at 1.6;
                                 // ViT 2.5e-4)
  bool absolute_lr = false;      // treat lr as the absolute LR
  double warmup_epochs = 0.0;    // linear warm-up length in epochs (clamped below the total)
  double momentum = 0.9;         // sgd_agc
  bool nesterov = true;          // sgd_agc
  double weight_decay = -1.0;    // < 0 = family default (sgd_agc: 2e-5 added after clipping; adamw: 1e-4 decoupled)
  double clip = -1.0;            // < 0 = family default; 0 disables. sgd_agc: AGC threshold (0.01); adamw: maximum
                                 // global gradient norm (1.0)
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;  // adamw
  std::string decay_convention = "big_vision";         // adamw: big_vision (p -= lr/peak*wd*p) | torch (p -= lr*wd*p)
  std::string pos_embed_resample = "bicubic";          // ViT: bilinear | bicubic, when the resolution changes
  double label_smoothing = 0.1;
  double ema_decay = 0.99999;    // <= 0 disables the EMA
  double stochastic_depth = 0.0;
  double dropout = -1.0;         // -1 = model default
  std::string activation = "gelu";
  std::string ws_form = "deepmind";  // weight standardisation: deepmind (reference) | timm (models/layers.h WsForm)
  std::string precision = "auto";  // auto | fp32 | bf16 (auto: resolve_precision in trainer.h; the run dir stores the
                                   // resolved value)
  bool channels_last = true;
  std::string device = "cpu";    // cpu | cuda[:N]; fused CPU kernels only on cpu (logistics: a resume may change it)

  // SAM (fine-tuning).
  double sam_rho = 0.0;          // 0 disables SAM
  bool sam_adaptive = false;

  // Augmentation.
  bool augment = true;           // random-resized crop + flip
  double crop_min_area = 0.35;   // random-resized crop area range lower end (reference: 0.08 at ImageNet scale)
  bool flip = true;
  int randaugment_layers = 0;
  int randaugment_magnitude = 0;
  double mixup = 0.0;            // MixUp Beta(alpha) (0 = off)
  double cutmix = 0.0;           // CutMix Beta(alpha) (0 = off)
  int64_t multiplicity = 1;      // repeated augmentation

  // Reproducibility and logistics.
  uint64_t seed = 0;
  int loader_threads = 2;
  int64_t eval_every = 0;        // steps between held-out/test evaluations (0 = only at the end)
  int64_t eval_points = 0;       // alternatively, number of evenly spaced evaluations
  double checkpoint_seconds = 120.0;  // wall seconds between checkpoints (also on SIGINT/SIGTERM and at the end)
  int64_t checkpoint_steps = 0;  // steps between checkpoints (0 = time-based only)
  int64_t log_every = 20;        // steps between metrics lines
  std::string run_dir;           // where config, checkpoints and metrics go
  std::string init_from;         // initial weights: checkpoint, weights.pt or .safetensors (fine-tuning: classifier replaced)
  bool quiet = false;            // no progress line
  std::string dedup = "off";     // near-duplicate removal: "on" drops from the training indices every image that is a
                                 // confirmed near-duplicate of a held-out or test image (data/dedup.h defaults:
                                 // pHash <= 10 bits, then the pixel check); recorded in <run_dir>/dedup.json

  int64_t micro() const { return micro_batch > 0 ? micro_batch : batch; }
  int64_t eval_res() const { return eval_resolution > 0 ? eval_resolution : resolution; }
  // Throws UserError naming the field for any invalid value.
  void validate() const;
};

nlohmann::json to_json(const TrainConfig& c);
// Reads a config; unknown keys are an error naming the key (typos must not pass silently). `origin` names the
// file for messages.
TrainConfig config_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace nfscale::train
