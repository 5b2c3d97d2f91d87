// train_flags.cpp - the training flags and settings-file loading (TOML via toml++, JSON via nlohmann).
#include "nfscale/cli/train_flags.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <toml++/toml.h>

#include "nfscale/train/config.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"
#include "nfscale/weights/model_source.h"

namespace nfscale::cli {

void add_train_flags(CLI::App& app, train::TrainConfig& c) {
  auto* g = &app;
  auto* model = g->add_option("--model,-m", c.model,
                              "Model name (see `nfscale models`), e.g. mini-F0, F0, mini-ViT-S, ViT-S-16, or a JSON spec "
                              "as printed by `nfscale models --json`")
                   ->group("Model");
  // No variable of its own: the file's spec becomes config.model (a registry name, or the spec as JSON text).
  auto* model_json = g->add_option("--model-json", "The model as a spec JSON file: what `nfscale models --model NAME "
                                                   "--json > spec.json` writes (edit any field to describe another shape)")
                         ->check(CLI::ExistingFile)
                         ->each([&c](const std::string& path) { c.model = weights::model_from_json_file(path); })
                         ->group("Model");
  model->excludes(model_json);
  g->add_option("--pos-embed-resample", c.pos_embed_resample,
                "ViT: bilinear | bicubic resampling of the position embedding at another resolution")
      ->capture_default_str()->group("Model");
  g->add_option("--data", c.data,
                "Training data spec kind[:path]: fashion-mnist (Debian default), mnist:DIR, idx:IMAGES,LABELS, "
                "cifar10:DIR, cifar100:DIR, imagefolder:DIR, digits")
      ->capture_default_str()->group("Data");
  g->add_option("--test-data", c.test_data, "Test data spec (default: the test split of --data when it has one)")
      ->group("Data");
  g->add_option("--holdout", c.holdout, "Examples carved from the training set for held-out evaluation (0 = none)")
      ->capture_default_str()->group("Data");
  g->add_option("--train-examples", c.train_examples,
                "Train on a fixed seeded subset of this many examples (0 = all; the hold-out is carved first)")
      ->capture_default_str()->group("Data");
  g->add_option("--dedup", c.dedup,
                "off | on: on removes from the training set every image that is a confirmed near-duplicate of a "
                "held-out or test image (pHash candidates within 10 bits, confirmed by a 28x28 pixel check over "
                "shifts of <= 2 px: correlation >= 0.95, mean |diff| <= 10 and no 4x4 window differing by more "
                "than 24 grey levels; see `nfscale dedup`, "
                "docs/data.md); what was removed goes to <run-dir>/dedup.json")
      ->capture_default_str()->group("Data");
  g->add_option("--res", c.resolution, "Training resolution in pixels")->capture_default_str()->group("Data");
  g->add_option("--eval-res", c.eval_resolution, "Evaluation resolution (0 = training resolution)")
      ->capture_default_str()->group("Data");
  g->add_option("--epochs", c.epochs, "Epoch budget, may be fractional (steps = ceil(epochs*N/batch))")
      ->capture_default_str()->group("Budget");
  g->add_option("--batch", c.batch, "Effective batch size (examples per optimiser step)")->capture_default_str()
      ->group("Budget");
  g->add_option("--micro-batch", c.micro_batch,
                "Examples per forward/backward; gradients accumulate to --batch (0 = --batch)")
      ->capture_default_str()->group("Budget");
  g->add_option("--optimizer", c.optimizer,
                "auto (the model family's: sgd_agc for NFNets, adamw for ViTs) | sgd_agc | adamw")
      ->capture_default_str()->group("Optimiser");
  g->add_option("--lr", c.lr,
                "Base learning rate at batch 256 (LR = lr*batch/256); 0 = the family's (NFNet 0.1 -> 1.6 at 4096, "
                "and absolute 1.6 at any smaller batch, as measured on the ladder; ViT 2.5e-4 -> 1e-3 at 1024)")
      ->capture_default_str()->group("Optimiser");
  g->add_flag("--absolute-lr", c.absolute_lr, "Treat --lr as the absolute learning rate (no batch scaling)")
      ->group("Optimiser");
  g->add_option("--warmup-epochs", c.warmup_epochs, "Linear warm-up length in epochs")->capture_default_str()
      ->group("Optimiser");
  g->add_option("--momentum", c.momentum, "SGD momentum (sgd_agc)")->capture_default_str()->group("Optimiser");
  g->add_option("--nesterov", c.nesterov, "Nesterov momentum (sgd_agc; reference form: step = g + m*buf)")
      ->capture_default_str()->group("Optimiser");
  g->add_option("--weight-decay", c.weight_decay,
                "Weight decay (< 0 = the optimiser's default; sgd_agc: 2e-5 added after clipping, not on gains/biases; "
                "adamw: 1e-4 decoupled, weight matrices only)")
      ->capture_default_str()->group("Optimiser");
  g->add_option("--clip", c.clip,
                "Clipping (< 0 = the optimiser's default, 0 disables): sgd_agc AGC threshold (0.01), adamw maximum "
                "global gradient norm (1.0)")
      ->capture_default_str()->group("Optimiser");
  g->add_option("--beta1", c.beta1, "AdamW beta1")->capture_default_str()->group("Optimiser");
  g->add_option("--beta2", c.beta2, "AdamW beta2")->capture_default_str()->group("Optimiser");
  g->add_option("--adam-eps", c.adam_eps, "AdamW epsilon (added to sqrt(v_hat))")->capture_default_str()
      ->group("Optimiser");
  g->add_option("--decay-convention", c.decay_convention,
                "AdamW decay: big_vision (p -= lr/peak_lr*wd*p) | torch (p -= lr*wd*p)")
      ->capture_default_str()->group("Optimiser");
  g->add_option("--label-smoothing", c.label_smoothing, "Label smoothing")->capture_default_str()->group("Optimiser");
  g->add_option("--ema-decay", c.ema_decay, "EMA decay with warm-up min(d,(1+t)/(10+t)) (<= 0 disables)")
      ->capture_default_str()->group("Optimiser");
  g->add_flag("--eval-ema", c.eval_ema, "Also evaluate the EMA weights (logged as ema_holdout/ema_test)")
      ->group("Optimiser");
  g->add_option("--stochastic-depth", c.stochastic_depth, "Stochastic-depth rate of the last block")
      ->capture_default_str()->group("Regularisation");
  g->add_option("--dropout", c.dropout, "Dropout before the classifier (-1 = the model's default)")
      ->capture_default_str()->group("Regularisation");
  g->add_option("--activation", c.activation,
                "Activation: gelu (tanh form, the reference), relu, silu or gelu_erf (exact, timm's) (gamma-scaled)")
      ->capture_default_str()->group("Model");
  g->add_option("--ws-form", c.ws_form, "Weight standardisation: deepmind (reference) or timm (docs/weights.md)")
      ->capture_default_str()->group("Model");
  g->add_option("--precision", c.precision, "auto | fp32 | bf16 (auto = bf16 autocast for full-size members F0..F7+ on a CPU with avx512_bf16, "
                "fp32 for the mini ladder, where both are equally fast); resolved once and stored in the run dir")
      ->capture_default_str()->group("Speed");
  g->add_option("--channels-last", c.channels_last, "Use channels_last memory format")->capture_default_str()
      ->group("Speed");
  g->add_option("--device", c.device, "cpu or cuda[:N] (fused kernels only on cpu; GPU runs are untested, README)")
      ->each([](const std::string& d) { parse_device(d, "--device"); })  // a named error before anything runs
      ->capture_default_str()->group("Speed");
  g->add_option("--sam-rho", c.sam_rho, "SAM neighbourhood size rho (0 = plain SGD)")->capture_default_str()
      ->group("SAM");
  g->add_flag("--sam-adaptive", c.sam_adaptive, "Adaptive SAM (ASAM); use a larger rho, e.g. 2.0")->group("SAM");
  g->add_option("--augment", c.augment, "Random-resized crop + flip on training images")->capture_default_str()
      ->group("Augmentation");
  g->add_option("--crop-min-area", c.crop_min_area, "Lower end of the random-resized-crop area range")
      ->capture_default_str()->group("Augmentation");
  g->add_option("--flip", c.flip, "Random horizontal flip")->capture_default_str()->group("Augmentation");
  g->add_option("--randaugment-layers", c.randaugment_layers, "RandAugment layers (0 = off)")->capture_default_str()
      ->group("Augmentation");
  g->add_option("--randaugment-magnitude", c.randaugment_magnitude, "RandAugment magnitude")->capture_default_str()
      ->group("Augmentation");
  g->add_option("--mixup", c.mixup, "MixUp Beta(alpha) (0 = off)")->capture_default_str()->group("Augmentation");
  g->add_option("--cutmix", c.cutmix, "CutMix Beta(alpha) (0 = off)")->capture_default_str()->group("Augmentation");
  g->add_option("--multiplicity", c.multiplicity,
                "Repeated augmentation: each batch holds batch/m images, each augmented m times")
      ->capture_default_str()->group("Augmentation");
  g->add_option("--seed", c.seed, "Random seed (data order, augmentation, init, dropout)")->capture_default_str()
      ->group("Run");
  g->add_option("--loader-threads", c.loader_threads, "Data-loader threads")->capture_default_str()->group("Run");
  g->add_option("--eval-every", c.eval_every, "Steps between evaluations (0 = at the end only)")
      ->capture_default_str()->group("Run");
  g->add_option("--eval-points", c.eval_points, "Number of evenly spaced evaluations (alternative to --eval-every)")
      ->capture_default_str()->group("Run");
  g->add_option("--checkpoint-seconds", c.checkpoint_seconds, "Wall seconds between checkpoints")
      ->capture_default_str()->group("Run");
  g->add_option("--checkpoint-steps", c.checkpoint_steps, "Steps between checkpoints (0 = time-based only)")
      ->capture_default_str()->group("Run");
  g->add_option("--log-every", c.log_every, "Steps between metrics lines in metrics.jsonl")->capture_default_str()
      ->group("Run");
  g->add_option("--run-dir", c.run_dir, "Run directory (config.json, checkpoint.pt, metrics.jsonl, weights.pt)")
      ->group("Run");
  g->add_flag("--quiet", c.quiet, "No progress line")->group("Run");
}

std::string settings_file_to_json(const std::string& path) {
  const std::string text = read_file(path);
  auto ends_with = [&](const std::string& s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(".json")) return text;
  if (ends_with(".toml")) {
    try {
      toml::table t = toml::parse(text, path);
      std::ostringstream ss;
      ss << toml::json_formatter{t};
      return ss.str();
    } catch (const toml::parse_error& e) {
      std::ostringstream ss;
      ss << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": TOML error: "
         << e.description();
      throw UserError(ss.str());
    }
  }
  throw UserError(path + ": settings files must end in .toml or .json");
}

void apply_settings_file(CLI::App& app, const std::string& path, train::TrainConfig& config) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(settings_file_to_json(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(path + ": JSON error: " + e.what());
  }
  train::TrainConfig before = config;
  train::config_from_json(j, path);  // rejects unknown keys and wrong types, naming the file and the key
  // Fields not present in the file keep their command-line/default values.
  nlohmann::json merged = train::to_json(before);
  for (auto it = j.begin(); it != j.end(); ++it) merged[it.key()] = it.value();
  // Flags the user typed override the file.
  nlohmann::json cli = train::to_json(before);
  for (auto* opt : app.get_options()) {
    if (opt->count() == 0) continue;
    std::string name = opt->get_single_name();
    for (auto& ch : name)
      if (ch == '-') ch = '_';
    static const std::pair<const char*, const char*> renames[] = {
        {"res", "resolution"}, {"eval_res", "eval_resolution"}, {"model", "model"},
        {"model_json", "model"}};
    for (auto& [from, to] : renames)
      if (name == from) name = to;
    if (cli.contains(name)) merged[name] = cli[name];
  }
  config = train::config_from_json(merged, path);
}

}  // namespace nfscale::cli
