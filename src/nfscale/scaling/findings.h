// findings.h - the paper's four findings as verdicts computed from the fits' intervals (reproduced / not
// reproduced / inconclusive, each with its numbers and the reason): log-log linearity of the frontier, N_opt and
// epochs growing at the same rate, the optimal LR falling with the epoch budget (faster for larger models), and
// fine-tuning preferring larger models trained for fewer epochs. Pure functions on fit results; rules in
// docs/scaling.md.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/bootstrap.h"
#include "nfscale/scaling/fits.h"

namespace nfscale::scaling {

enum class Verdict { Reproduced, NotReproduced, Inconclusive };
const char* verdict_name(Verdict v);  // "reproduced", "not reproduced", "inconclusive"

// (1) The frontier is a straight line in log-log axes.
struct LinearityFinding {
  Verdict verdict = Verdict::Inconclusive;
  std::string reason;
  double r2_log = 0;             // R^2 of log L ~ log C on the frontier
  std::vector<double> flops;     // frontier compute C (for a residual plot)
  std::vector<double> residuals; // log L - (log a + b log C) per frontier point
  Estimate curvature;            // c2 of log L = c0 + c1 x + c2 x^2, x = log C - mean log C (bootstrap interval)
  int points = 0;
};
constexpr double kLinearityMinR2 = 0.95;
constexpr int kLinearityMinPoints = 4;  // a quadratic with a residual degree of freedom
// Rule: fewer than kLinearityMinPoints frontier points or no curvature interval -> inconclusive; curvature interval
// excluding 0 -> not reproduced (systematic bend); R^2 >= kLinearityMinR2 -> reproduced; else inconclusive (scatter).
// The curvature interval uses the frontier's bootstrap (seed noise, re-selection, case resampling).
LinearityFinding linearity_finding(const FrontierFit& frontier, const BootstrapOptions& bootstrap);

// (2) Compute-optimal model size and epoch budget grow with compute, at the same rate.
struct GrowthFinding {
  Verdict verdict = Verdict::Inconclusive;
  std::string reason;
  Estimate n_exponent;       // N_opt ~ C^a
  Estimate epochs_exponent;  // epochs_opt ~ C^e
  Estimate difference;       // a - e, from the joint bootstrap samples
};
// Rule: missing intervals -> inconclusive; an exponent interval entirely <= 0 -> not reproduced (does not grow);
// an exponent interval containing 0 -> inconclusive; both > 0 and the difference's interval contains 0 ->
// reproduced; both > 0 but the difference excludes 0 -> not reproduced (they grow at different rates).
GrowthFinding growth_finding(const ComputeOptimalFit& fit, double level);

// (3) Optimal LR vs epoch budget: about the same for all models at the smallest budget, falling with the budget,
// faster for larger models.
struct LrModelSlope {
  std::string model;
  double params = kMissing;
  Estimate slope;            // d log lr_opt / d log epochs (interval: OLS standard error, Student t)
  double smallest_budget_lr = kMissing;  // refined best LR at the model's smallest budget
};
struct LrFinding {
  Verdict verdict = Verdict::Inconclusive;
  std::string reason;
  std::vector<LrModelSlope> models;  // sorted by params
  double small_budget_lr_ratio = kMissing;  // max / min refined LR at the smallest budget across models
  Estimate size_trend;  // d slope / d log N over models (interval from the slopes' intervals, parametric draw)
};
constexpr double kLrFlatRatio = 2.0;  // "about the same": within one factor-2 grid step
// Rule: fewer than 2 models with slope intervals -> inconclusive; any slope interval entirely > 0 (rising) or a
// size trend interval entirely > 0 -> not reproduced; every slope interval < 0, the size trend interval < 0 and
// the smallest-budget LRs within kLrFlatRatio -> reproduced; otherwise inconclusive.
LrFinding lr_finding(const std::vector<LrSlope>& slopes, const std::vector<BestLr>& best,
                     const BootstrapOptions& bootstrap);

// (4) Fine-tuning favours larger models with fewer epochs than the pre-training optimum at the same compute.
struct FinetunePoint {
  std::string model;
  double params = kMissing;
  double epochs = kMissing;   // pre-training epoch budget
  double flops = kMissing;    // pre-training compute
  double pretrain_loss = kMissing;
  double finetune_error = kMissing;
};
struct FinetuneBudget {  // one compute budget with >= 2 candidates
  double flops = 0;      // geometric mean of its members' compute
  std::string pretrain_best, finetune_best;  // argmin of pre-train loss / of fine-tune error
  double pretrain_best_params = 0, finetune_best_params = 0;
  double pretrain_best_epochs = 0, finetune_best_epochs = 0;
  int candidates = 0;
};
struct FinetuneFinding {
  Verdict verdict = Verdict::Inconclusive;
  std::string reason;
  std::vector<FinetuneBudget> budgets;
  int larger_fewer = 0;  // budgets where fine-tuning picks a larger model with fewer epochs
  int same = 0;          // the same run
  int other = 0;         // a smaller model (or a larger one with more epochs)
};
constexpr double kFinetuneBudgetTolerance = 1.5;  // runs within this compute ratio share a budget
constexpr int kFinetuneMinBudgets = 2;
// Budgets: runs sorted by compute, grouped while within kFinetuneBudgetTolerance of the group's cheapest run.
// Rule: fewer than kFinetuneMinBudgets budgets with >= 2 candidates -> inconclusive; fine-tuning picks a larger
// model with fewer epochs in more than half of the budgets and never another way -> reproduced; never -> not
// reproduced; otherwise inconclusive. Throws UserError when a point lacks a field.
FinetuneFinding finetune_finding(const std::vector<FinetunePoint>& points);

struct Findings {
  LinearityFinding linearity;
  GrowthFinding growth;
  LrFinding lr;
  FinetuneFinding finetune;
  std::string linearity_error, growth_error, lr_error, finetune_error;  // why a finding could not be computed
};
// All four from a StudyFit (and fine-tune points, possibly empty: the fourth is then inconclusive).
Findings study_findings(const StudyFit& fit, const std::vector<FinetunePoint>& finetune);

nlohmann::json to_json(const LinearityFinding& f);
nlohmann::json to_json(const GrowthFinding& f);
nlohmann::json to_json(const LrFinding& f);
nlohmann::json to_json(const FinetuneFinding& f);
nlohmann::json to_json(const Findings& f);
std::string format_findings(const Findings& f);

}  // namespace nfscale::scaling
