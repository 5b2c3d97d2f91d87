// model_bench.h - nfscale's side of `nfscale bench`: one model with its optimiser and a synthetic batch, timed the
// way the trainer runs it (train::accumulate_gradients, then the family's optimiser step) and in inference (eval, InferenceMode,
// optional bf16 autocast), in any step setting, with the fused ops on or off.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfscale/models/classifier.h"
#include "nfscale/perf/bench_case.h"

namespace nfscale::perf {

class ModelBench {
 public:
  // Builds c.model (seed 0; reference classes and input channels; skip gains 0.5 so every branch's backward does
  // real work; a zero-initialised head gets small random weights), the family's optimiser (train_defaults) and one random batch [c.batch, C, c.res, c.res] with soft targets,
  // all on `device` (timings wait for a CUDA device to finish).
  explicit ModelBench(const BenchCase& c, const torch::Device& device = torch::kCPU);
  ~ModelBench();

  // Images/s of `steps` training steps (forward, soft-target cross-entropy, backward, optimiser step at lr 1e-3),
  // with the fused ops switched to `fused` (the caller restores the switch). opt_ms, when given, receives the mean
  // optimiser step time of this call in ms.
  double train_rate(bool fused, int steps, const StepSetting& setting, std::vector<double>* opt_ms = nullptr);
  // Images/s of `steps` inference batches.
  double infer_rate(bool fused, int steps, const StepSetting& setting);

  // Warms up and times every candidate (best of 2 after one warm-up step each) with the fused ops `fused`; sets
  // train_setting() / infer_setting() to the fastest and returns {setting: {train_img_s, infer_img_s}}.
  nlohmann::json choose_settings(const std::vector<StepSetting>& candidates, bool fused);
  const StepSetting& train_setting() const { return train_setting_; }
  const StepSetting& infer_setting() const { return infer_setting_; }

  const models::ModelCost& cost() const { return cost_; }
  int64_t classes() const;
  int64_t in_channels() const;
  std::string optimizer_kind() const;  // "sgd_agc" | "adamw"

 private:
  struct State;
  std::unique_ptr<State> s_;
  models::ModelCost cost_;
  StepSetting train_setting_, infer_setting_;
};

}  // namespace nfscale::perf
