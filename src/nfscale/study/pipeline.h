// pipeline.h - the study pipeline: sweep -> points -> fits -> planner -> figures and HTML report.
// `nfscale study` runs all of it; `nfscale fit --db` / `nfscale plan --db` reuse the pieces.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "nfscale/scaling/family_comparison.h"
#include "nfscale/scaling/fits.h"
#include "nfscale/scaling/planner.h"
#include "nfscale/scaling/points.h"
#include "nfscale/study/finetune_study.h"
#include "nfscale/study/plan_check.h"
#include "nfscale/study/study_spec.h"
#include "nfscale/study/sweep.h"

namespace nfscale::study {

// Done trials of `study` in the database at `db_path` as run points (origin "trial N"); the loss is the held-out
// cross-entropy at the end of training. Throws UserError naming the file if the study has no finished trial.
std::vector<scaling::RunPoint> study_points(const std::string& db_path, const std::string& study);

// Models available to the planner: one entry per model with a finished trial (params and training FLOPs per
// example as counted for that trial), and the training-set size the trials used.
std::vector<scaling::ModelCostInfo> planner_models(const std::vector<scaling::RunPoint>& points,
                                                   double* dataset_size);

// Training FLOP/s this machine achieved over the study's finished trials (sum FLOPs / sum seconds); 0 if none.
double measured_flops_per_second(const std::string& db_path, const std::string& study);

// One model family's part of a study: its models, its finished points and its fits.
struct FamilyStudyFit {
  std::string family;                     // "nfnet", "vit"
  std::vector<scaling::RunPoint> points;  // the family's finished trials
  scaling::StudyFit fit;
};

// The display name of a family ("NFNet", "ViT"; other names unchanged).
std::string family_display_name(const std::string& family);

struct StudyReport {
  std::string report_dir;       // <out_dir>/report
  std::string html_path;        // <out_dir>/report/index.html
  scaling::StudyFit fit;               // the primary family's (the first of the study's families with results)
  std::string primary_family;
  std::vector<FamilyStudyFit> families;  // every family with finished trials, in the study's order
  std::optional<scaling::FamilyComparison> comparison;  // two families, both with a frontier fit
  std::string comparison_error;                         // why a mixed study has no comparison
  std::optional<scaling::Plan> plan;  // for plan_factor x the largest budget run
  double plan_factor = 2.0;           // the study's plan_check factor, or 2 when the check is off
  std::string plan_error;
  std::optional<PlanCheck> plan_check;  // the plan trained for real (study setting plan_check)
  int lr_cells = 0, lr_bracketed = 0;   // (model, budget) cells, and those whose best LR is interior
  std::string findings_text;            // the findings with their verdicts, as text
  int64_t trials_done = 0, trials_failed = 0;
  std::optional<FinetuneStudy> finetune;  // with --finetune
};

// Fits the study in `spec.out_dir` and writes the report (index.html, figures as SVG and PNG, fit.json,
// points.csv, plan.json). A study with two model families is fitted per family; the report then opens with their
// comparison at equal compute (comparison.json, fig0_families, fig0b_paper_scale) and the single-family sections
// (Figs. 2-3, planner, findings) describe the primary family. With `finetune`, also fine-tunes the frontier checkpoints and adds Fig. 1.
// With `check`, the plan shown is the one that was trained and the report compares it with the achieved loss.
StudyReport write_study_report(const StudySpec& spec, const scaling::FitOptions& fit_options = {},
                               const FinetuneStudyOptions* finetune = nullptr, const PlanCheck* check = nullptr);

}  // namespace nfscale::study
