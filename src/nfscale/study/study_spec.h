// study_spec.h - what a scaling study sweeps: models x epoch budgets x learning rates x seeds, on which data, and
// the shared training settings. Presets ("default", "full", "smoke") and TOML/JSON study files.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/train/config.h"

namespace nfscale::study {

struct StudySpec {
  std::string name = "default";
  std::vector<std::string> models;
  std::vector<double> epochs;          // epoch budgets, e.g. 0.25, 0.5, 1, 2
  std::map<std::string, std::vector<double>> model_epochs;  // per-model budgets replacing `epochs` for that model
                                       // (model size and budget grow together: the largest member gets the
                                       // longest budget without paying for it on every member)
  std::vector<double> lrs;             // base LRs (batch-256 scale) of the grid; with adaptive_lr: the start values
  std::map<std::string, std::vector<double>> family_lrs;  // per model family ("nfnet", "vit"): its own grid or
                                       // start values, replacing `lrs` for that family's models (SGD+AGC and AdamW
                                       // want learning rates ~100x apart)
  bool adaptive_lr = false;            // per (model, budget): start at the predicted optimum, step x2 until bracketed
  int max_lr_trials = 6;               // adaptive search: at most this many LRs per (model, budget)
  std::vector<uint64_t> seeds{0};
  train::TrainConfig base;             // shared settings (data, holdout, resolution, batch, recipe)
  std::string out_dir;                 // results.sqlite, trials/, report/ live here
  int64_t finetune_top = 0;            // study --finetune: fine-tune the frontier checkpoints (see finetune pipeline)
  int frontier_repeats = 0;            // after the sweep: re-train each frontier trial with this many more seeds
  double plan_check = 0.0;             // after the fits: train the planner's choice for plan_check x the largest
                                       // swept budget and compare predicted with achieved loss (0 = off; 2-4)

  std::string db;                      // results store (--db / NFSCALE_DB): SQLite path or postgresql:// URI;
                                       // "" = <out_dir>/results.sqlite. Never written to study.json (may hold a
                                       // password); workers get it through NFSCALE_DB.
  const std::vector<double>& epochs_for(const std::string& model) const;  // model_epochs[model] or epochs
  const std::vector<double>& lrs_for(const std::string& model) const;     // family_lrs[its family] or lrs
  std::vector<std::string> families() const;  // the families of `models`, in the order of their first model
  StudySpec for_family(const std::string& family) const;  // a copy with that family's models (and their budgets) only
  std::vector<double> all_epochs() const;  // every budget of any model, ascending, without repeats
  size_t cell_count() const;               // (model, budget, seed) cells of the sweep
  std::string db_path() const;         // db, or <out_dir>/results.sqlite
  std::string trial_dir(const std::string& model, double epochs, double lr, uint64_t seed) const;
  void validate() const;               // UserError naming the field
};

// Presets: "default" (the paper's regime at small scale, <= 30 min on 2 cores), "full" (the longer study), "vs-vit"
// (the NFNet and ViT mini ladders on Fashion-MNIST, compared at equal compute), "smoke" (seconds; tests).
StudySpec preset(const std::string& name);
std::vector<std::string> preset_names();

nlohmann::json to_json(const StudySpec& s);
// Reads a study file (.toml or .json) on top of `base` (keys: name, models, epochs, model_epochs, lrs, family_lrs,
// adaptive_lr, max_lr_trials,
// seeds, out_dir, and `train` = a table of training settings). Unknown keys are errors naming the file and key.
StudySpec study_from_json(const nlohmann::json& j, const std::string& origin, StudySpec base);

}  // namespace nfscale::study
