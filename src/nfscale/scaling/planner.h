// planner.h - turns a compute budget (FLOPs, TPU-v4 core-hours, or seconds on this machine) and a fitted study
// into a recommendation: model, epoch budget, learning rate, and predicted held-out loss with its interval.
//
// Method (docs/scaling.md): N_opt(C) from the compute-optimal law, snapped to the available model nearest in
// log N (fallback: the model of the frontier point nearest in log C); epochs = C / (train FLOPs per example x
// dataset size); LR from that model's optimal-LR-vs-epochs law (fallback: the nearest measured best LR in log
// epochs, then the nearest model's); loss from the frontier law L = a C^b with its bootstrap interval (and from
// L = E + a C^b when fitted). Anything outside the fitted ranges is flagged as extrapolation.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/compute.h"
#include "nfscale/scaling/fits.h"

namespace nfscale::scaling {

// A model the planner may choose.
struct ModelCostInfo {
  std::string model;                         // must match the model names of the run points for LR lookup
  double params = kMissing;                  // N
  double train_flops_per_example = kMissing; // e.g. training_flops_per_example(forward MACs)
};

enum class BudgetUnit { Flops, TpuV4CoreHours, LocalSeconds };
// "flops", "tpu-v4-core-hours" (or "core-hours"), "seconds"; throws UserError naming the accepted spellings.
BudgetUnit parse_budget_unit(const std::string& s);
const char* budget_unit_name(BudgetUnit u);

struct Budget {
  double amount = kMissing;
  BudgetUnit unit = BudgetUnit::Flops;
  double local_flops_per_second = kMissing;  // required for LocalSeconds; optional otherwise (reports seconds)
  TpuV4Convention tpu;
};
// The budget in FLOPs; throws UserError when the amount or the needed rate is invalid.
double budget_to_flops(const Budget& b);

struct PlanOptions {
  double dataset_size = kMissing;  // examples per epoch (required)
};

struct Plan {
  double flops = 0, tpu_v4_core_hours = 0;
  double local_seconds = kMissing;  // when a local FLOP/s was given
  Estimate n_opt;                   // compute-optimal N from the law (NaN if the law is missing)
  std::string model;
  double params = kMissing;
  double train_flops_per_example = kMissing;
  double examples = 0;  // C / flops_per_example
  double epochs = 0;    // examples / dataset_size
  double lr = kMissing;
  std::string lr_method;
  Estimate predicted_loss;         // frontier L = a C^b with bootstrap interval
  Estimate predicted_loss_offset;  // frontier L = E + a C^b (NaN if not fitted)
  // The same laws' prediction intervals for one run at this budget (the fitted curve's uncertainty and the
  // measured seed noise; equal to the above when no seed was repeated). A single check run is judged by these.
  Estimate predicted_run_loss, predicted_run_loss_offset;
  bool has_run_intervals() const;
  // The interval a single run is judged by: the run interval when there is one, else the curve's.
  const Estimate& run_interval_power() const;
  const Estimate& run_interval_offset() const;
  bool extrapolated = false;
  std::vector<std::string> notes;  // how each choice was made, and every extrapolation
};

// Throws UserError if there are no models, a model lacks params / FLOPs per example, the dataset size is missing,
// or the study has neither a compute-optimal law nor a frontier.
Plan plan_budget(const StudyFit& study, const std::vector<ModelCostInfo>& models, const Budget& budget,
                 const PlanOptions& options);

nlohmann::json to_json(const Plan& p);
std::string format_plan(const Plan& p);

}  // namespace nfscale::scaling
