// study_flags.cpp - resolution of a study from preset, file and flags.
#include "nfscale/cli/study_flags.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "nfscale/cli/train_flags.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {

void add_study_flags(CLI::App& app, StudyArgs& a) {
  std::string presets;
  for (auto& p : study::preset_names()) presets += (presets.empty() ? "" : ", ") + p;
  app.add_option("--preset", a.preset,
                 "Study preset: " + presets + " (default: 4 models x 5 budgets, the largest member 6, LR searched, "
                 "<= 30 min on 2 cores; full: 7 models x 6 budgets; vs-vit: the NFNet and ViT mini ladders compared at\n"
                 "equal compute; smoke: seconds)")
      ->capture_default_str();
  app.add_option("--study-file", a.study_file,
                 "Study file (.toml or .json): name, models, epochs, model_epochs (a table model = [budgets] replacing "
                 "epochs for that model), lrs, family_lrs (a table family = [LRs] replacing lrs for that family's models,\n"
                 "e.g. nfnet = [1.6], vit = [0.016]; a models list may mix families), adaptive_lr, max_lr_trials, seeds,\n"
                 "out_dir, and a [train] table of training settings; applied on top of --preset")
      ->check(CLI::ExistingFile);
  app.add_option("--out", a.out_dir, "Study directory (results.sqlite, trials/, report/); default studies/<preset>");
  app.add_option("--db", a.db,
                 "Results store: an SQLite file, or a postgresql:// URI for workers on several hosts (docs/results-db.md;\n"
                 "keep passwords in ~/.pgpass or PGPASSFILE); default <out>/results.sqlite")
      ->envname("NFSCALE_DB");
  app.add_option("--workers", a.sweep.workers,
                 "Worker processes sharing the results database (threads are split between them)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--trial-nproc", a.sweep.trial_nproc,
                 "Data-parallel ranks per trial: each worker trains its trial as N processes of this binary on this\n"
                 "host (Gloo over loopback). The study's batch stays the global batch; a worker's threads are split\n"
                 "between its ranks; only rank 0's result is recorded, once; a crashed rank gives the trial back for a\n"
                 "retry from its checkpoint. See docs/distributed.md")
      ->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--stale-after", a.sweep.stale_after_s,
                 "Seconds without a heartbeat after which a running trial is reclaimed (its worker died)")
      ->capture_default_str();
  app.add_flag("--retry-failed", a.sweep.retry_failed, "Put failed (e.g. diverged) trials back to pending first");
  app.add_flag("--worker-only", a.worker_only, "Internal: run one worker of a registered study")->group("");
}

study::StudySpec resolve_study(const StudyArgs& a) {
  study::StudySpec spec = study::preset(a.preset);
  if (!a.study_file.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(settings_file_to_json(a.study_file));
    } catch (const nlohmann::json::parse_error& e) {
      throw UserError(a.study_file + ": JSON error: " + e.what());
    }
    spec = study::study_from_json(j, a.study_file, spec);
    if (!j.contains("out_dir") && a.out_dir.empty()) spec.out_dir = "studies/" + spec.name;
  }
  if (!a.out_dir.empty()) spec.out_dir = a.out_dir;
  spec.db = a.db;
  spec.validate();
  return spec;
}

}  // namespace nfscale::cli
