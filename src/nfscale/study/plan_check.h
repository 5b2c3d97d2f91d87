// plan_check.h - the planner checked by reality: after the sweep and its fits, the planner's recommendation for a
// budget a few times above the largest swept one is trained for real, and its held-out loss is compared with the
// predicted value and interval.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/planner.h"
#include "nfscale/study/study_spec.h"
#include "nfscale/study/sweep.h"

namespace nfscale::study {

struct PlanCheck {
  double factor = 0;                // budget = factor x the largest swept trial's FLOPs
  double budget_flops = 0;
  scaling::Plan plan;               // the recommendation that was trained
  std::string out_dir;              // <out_dir>/plan-check (its own study.json, results database and trial dir)
  bool done = false;                // the run finished (else `error` says why)
  double achieved_loss = scaling::kMissing, achieved_top1_err = scaling::kMissing;
  double achieved_flops = 0, seconds = 0;
  std::optional<bool> inside_power;   // achieved loss inside L = a C^b's interval for one run (Plan::run_interval_*)
  std::optional<bool> inside_offset;  // inside L = E + a C^b's interval for one run (when fitted)
  std::string error;
  std::string verdict() const;      // one sentence: predicted vs achieved, inside or not
};

// The study that trains the plan: the parent's training settings, the planned model, budget and LR, one seed, in
// <out_dir>/plan-check.
StudySpec plan_check_spec(const StudySpec& spec, const scaling::Plan& plan);

// Fits the finished study, plans for spec.plan_check x its largest trial's FLOPs, trains that run (resuming, like
// every trial) with `options`, and compares. Planning failures are returned in `error`, not thrown.
PlanCheck run_plan_check(const StudySpec& spec, const scaling::FitOptions& fit_options, const SweepOptions& options);

// The same in two halves, so the check's run can train beside the seed repeats (one core each; these small models
// gain nothing from a second thread): start_plan_check plans from the points recorded so far (the sweep), writes
// plan.json, registers the check and starts one worker process for it (returns its pid, or -1 when nothing is
// left to train or planning failed, with `error` set); finish_plan_check waits for that process, reads the result
// and recomputes the prediction of the same plan (model, budget, LR unchanged) from the fit of every point
// recorded by then (the repeats' seed noise included), which is what the single run is judged by.
pid_t start_plan_check(PlanCheck& c, const StudySpec& spec, const scaling::FitOptions& fit_options,
                       const SweepOptions& options);
void finish_plan_check(PlanCheck& c, pid_t worker, const StudySpec& spec, const scaling::FitOptions& fit_options,
                       bool interrupted);

// A finished (or interrupted) check read back from <out_dir>/plan-check without training: for --report-only.
std::optional<PlanCheck> read_plan_check(const StudySpec& spec);

nlohmann::json to_json(const PlanCheck& c);

}  // namespace nfscale::study
