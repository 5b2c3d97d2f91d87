// fits.h - the scaling-study fits on run points: best learning rate per (model, epoch budget) with its bracket,
// optimal LR vs epochs per model (log-log slope), the compute frontier with L = a*C^b and L = E + a*C^b fits,
// compute-optimal N_opt(C) and D_opt(C) exponents, and the whole study in one call (fit_study) for the CLI,
// results database and planner. Definitions in docs/scaling.md.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/bootstrap.h"
#include "nfscale/scaling/chinchilla.h"
#include "nfscale/scaling/points.h"
#include "nfscale/scaling/powerlaw.h"
#include "nfscale/scaling/seeds.h"

namespace nfscale {
class SplitMix;
}

namespace nfscale::scaling {

// ---- learning rate -------------------------------------------------------------------------------------------
// Best LR of one (model, epochs) group: the grid LR with the lowest loss (mean over seeds).
struct BestLr {
  std::string model;
  double params = kMissing;  // N of the model (NaN if the points have none)
  double epochs = 0;
  double lr = 0;             // best grid LR
  double loss = 0;           // its mean loss
  double lr_below = kMissing, lr_above = kMissing;  // neighbouring grid LRs, NaN at the grid edge
  bool interior = false;     // both neighbours exist: the optimum is bracketed
  double refined_lr = 0;     // vertex of a parabola in log LR through the best and its neighbours (= lr if not interior)
  int grid_size = 0;         // distinct LRs tried
  int runs = 0;              // points in the group (LRs x seeds)
};

// Needs model, epochs, lr, loss on every point. Throws UserError when a point lacks them or there are none.
std::vector<BestLr> fit_best_lrs(const std::vector<RunPoint>& points);

// Optimal LR vs epoch budget for one model: lr_opt = a * epochs^b, fitted on (epochs, refined best LR).
struct LrSlope {
  std::string model;
  double params = kMissing;
  PowerLaw law;             // law.b is the log-log slope
  Estimate slope;           // law.b with its OLS interval b +- t(level, n - 2) * se(b); flagged at_bound (no
                            // interval) when best LRs at the grid edge are in the fit
  int budgets = 0;
  int edge_optima = 0;      // budgets whose best LR is at the grid edge (it only bounds the optimum)
  bool edge_excluded = false;  // edge optima were left out (done when >= kMinLrSlopeBudgets interior ones remain)
  double min_epochs = 0, max_epochs = 0;
};
constexpr int kMinLrSlopeBudgets = 3;

// One slope per model with at least kMinLrSlopeBudgets budgets; models with fewer are listed in `skipped`
// as (model, reason). `level`: of the slope's Student-t interval.
std::vector<LrSlope> fit_lr_slopes(const std::vector<BestLr>& best,
                                   std::vector<std::pair<std::string, std::string>>* skipped = nullptr,
                                   double level = 0.95);

// ---- compute frontier ----------------------------------------------------------------------------------------
// Frontier: sort by flops (ties: lowest loss first) and keep each point whose loss is strictly lower than every
// cheaper point's. Needs flops and loss on every point.
std::vector<RunPoint> extract_frontier(const std::vector<RunPoint>& points);

// One bootstrap replicate of the frontier of `cells`. With measured seed noise (some cell repeated): the cell means
// are drawn under that noise (draw_seed_noise) and the frontier is selected again, so the replicate carries the
// measurement noise and the selection noise (a parametric bootstrap; case resampling on top would count the noise
// twice). Without repeated seeds: the frontier's points are case-resampled (nonparametric bootstrap).
std::vector<RunPoint> resample_frontier(const SeedCells& cells, SplitMix& rng);
// The bootstrap samples without their first `first` columns.
BootstrapSamples drop_columns(const BootstrapSamples& boot, size_t first);

struct FrontierFit {
  SeedCells seeds;                 // the runs averaged over seeds, and the measured seed noise
  std::vector<RunPoint> frontier;  // frontier of the seed-averaged cells, sorted by flops
  PowerLaw power;                  // L = a * C^b
  Estimate power_a, power_b;
  std::optional<OffsetPowerLaw> offset;  // L = E + a * C^b (needs kMinOffsetPowerLawPoints frontier points)
  std::string offset_error;              // why `offset` is empty
  Estimate offset_E, offset_a, offset_b;
  BootstrapSamples power_samples;   // (a, b) per resample
  BootstrapSamples offset_samples;  // (E, a, b) per resample
  double level = 0.95;
  double min_flops = 0, max_flops = 0;
  // Predicted loss at compute C with its bootstrap percentile interval (interval of the fitted curve).
  Estimate predict_power(double flops) const;
  Estimate predict_offset(double flops) const;  // value NaN if no offset fit
  // The loss ONE new run at compute C will reach (a prediction interval, what a single check run is judged
  // against): every bootstrap curve value times exp(sigma z), z ~ N(0, 1), sigma the measured seed noise drawn as
  // draw_seed_sigma. Without repeated seeds there is no noise estimate and these equal predict_power/_offset.
  Estimate predict_run_power(double flops) const;
  Estimate predict_run_offset(double flops) const;
};

// Runs that differ only in their seed are averaged first (seeds.h). Throws UserError when fewer than
// kMinPowerLawPoints frontier points remain. Bootstrap replicates come from resample_frontier.
FrontierFit fit_frontier(const std::vector<RunPoint>& points, const BootstrapOptions& bootstrap = {});

// ---- compute-optimal allocation ------------------------------------------------------------------------------
// N_opt = kN * C^aN and D_opt = kD * C^bD, regressed in log space on the frontier points (which need params and
// examples) of the seed-averaged runs, bootstrapped as fit_frontier. Needs at least 2 distinct model sizes on the
// frontier.
struct ComputeOptimalFit {
  PowerLaw n_law, d_law;
  Estimate n_coeff, n_exponent, d_coeff, d_exponent;
  PowerLaw e_law;                       // epochs_opt = kE * C^e (when every run has an epoch budget)
  Estimate e_coeff, e_exponent;         // value NaN without epoch budgets
  int n = 0;
  int distinct_models = 0;
  BootstrapSamples samples;  // (kN, aN, kD, bD[, kE, e]) per resample
  double min_flops = 0, max_flops = 0;
};
ComputeOptimalFit fit_compute_optimal(const std::vector<RunPoint>& points, const BootstrapOptions& bootstrap = {});

// ---- the whole study -----------------------------------------------------------------------------------------
struct FitOptions {
  BootstrapOptions bootstrap;
  ChinchillaOptions chinchilla;
  bool fit_chinchilla = true;
};

// Every fit that the data allow; a fit that cannot be done records its reason (the *_error strings) instead of
// throwing.
struct StudyFit {
  int n_points = 0;
  FitOptions options;
  std::vector<BestLr> best_lrs;
  std::string best_lrs_error;
  std::vector<LrSlope> lr_slopes;
  std::vector<std::pair<std::string, std::string>> lr_slopes_skipped;  // (model, reason)
  std::optional<FrontierFit> frontier;
  std::string frontier_error;
  std::optional<ComputeOptimalFit> compute_optimal;
  std::string compute_optimal_error;
  std::optional<ChinchillaFit> chinchilla;
  std::string chinchilla_error;
};

// Throws UserError only if `points` is empty.
StudyFit fit_study(const std::vector<RunPoint>& points, const FitOptions& options = {});

nlohmann::json to_json(const BestLr& b);
nlohmann::json to_json(const LrSlope& s);
nlohmann::json to_json(const FrontierFit& f);
nlohmann::json to_json(const ComputeOptimalFit& f);
nlohmann::json to_json(const StudyFit& s);
// Readable tables of every fit.
std::string format_study_fit(const StudyFit& s);

}  // namespace nfscale::scaling
