// chinchilla.h - Chinchilla Approach 3 (Hoffmann et al. 2022): L(N, D) = E + A/N^alpha + B/D^beta fitted by
// minimising sum Huber_delta(log Lhat - log L), delta = 1e-3, with Lhat = LSE(a - alpha log N, b - beta log D, e)
// (a = log A, b = log B, e = log E), by L-BFGS from a grid of initialisations; the best start is kept.
#pragma once
#include <Eigen/Core>
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/bootstrap.h"
#include "nfscale/scaling/points.h"
#include "nfscale/scaling/seeds.h"

namespace nfscale::scaling {

struct ChinchillaParams {
  double E = 0, A = 0, B = 0, alpha = 0, beta = 0;
  double operator()(double N, double D) const;  // predicted loss
};

struct ChinchillaOptions {
  double huber_delta = 1e-3;
  // Initialisation grid (Hoffmann et al.): alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1},
  // a, b in {0, 5, ..., 25}: 4500 starts. A coarser grid is used when `coarse_grid` (tests, bootstrap).
  bool coarse_grid = false;
  // Each bootstrap resample is refitted from these grid starts: the `bootstrap_best_starts` starts that ended
  // lowest on the full data, plus `bootstrap_random_starts` starts drawn from the grid afresh per resample.
  int bootstrap_best_starts = 8;
  int bootstrap_random_starts = 8;
};

struct ChinchillaFit {
  Estimate E, A, B, alpha, beta;
  // Implied compute-optimal allocation under C proportional to N*D: N_opt ~ C^a, D_opt ~ C^b.
  Estimate a_exponent;  // beta / (alpha + beta)
  Estimate b_exponent;  // alpha / (alpha + beta)
  double objective = 0;  // Huber objective at the optimum
  double r2_log = 0;     // R^2 of log L
  SeedCells seeds;       // runs averaged over seeds, and the measured seed noise
  int n = 0;             // fitted (N, D) points: the best learning rate's mean loss per (N, D)
  int runs = 0;          // input runs
  int distinct_params = 0, distinct_examples = 0, starts = 0;
  int bootstrap_starts = 0;  // L-BFGS starts per bootstrap resample
  int bootstrap_succeeded = 0, bootstrap_requested = 0;
  ChinchillaParams params() const { return {E.value, A.value, B.value, alpha.value, beta.value}; }
};

constexpr int kMinChinchillaPoints = 6;
constexpr int kMinChinchillaDistinct = 3;

// Fit on raw (N, D, L) triples; throws UserError (naming `what`) on too few points, too few distinct N or D,
// or non-positive / non-finite values. No bootstrap.
ChinchillaParams fit_chinchilla_raw(const std::vector<double>& N, const std::vector<double>& D,
                                    const std::vector<double>& L, const ChinchillaOptions& options,
                                    const std::string& what, double* objective = nullptr, int* starts = nullptr);

// The grid of L-BFGS starts (a, b, e, alpha, beta) for `options`.
std::vector<Eigen::VectorXd> chinchilla_grid(const ChinchillaOptions& options);

// Fit on run points (needs params, examples, loss) with bootstrap intervals. Runs differing only in their seed are
// averaged, and each (N, D) contributes its best learning rate's mean loss. Each bootstrap resample either draws
// the cell means under the measured seed noise (seeds.h) and takes the best LR per (N, D) again, or, without
// repeated seeds, case-resamples the (N, D) points; then refits from the starts described in ChinchillaOptions. Parameters at a bound are flagged
// (flag_chinchilla_bounds) and get no interval.
ChinchillaFit fit_chinchilla(const std::vector<RunPoint>& points, const ChinchillaOptions& options = {},
                             const BootstrapOptions& bootstrap = {});

// Bounds: E below kChinchillaBoundE x the lowest loss (E -> 0; log E is unbounded below), alpha or beta outside
// [kChinchillaMinExponent, kChinchillaMaxExponent] (the term is constant or vanishes; A or B and the implied
// exponents are then flagged too).
constexpr double kChinchillaBoundE = 1e-3;
constexpr double kChinchillaMinExponent = 0.01;
constexpr double kChinchillaMaxExponent = 10;
void flag_chinchilla_bounds(ChinchillaFit& fit, double min_loss);

nlohmann::json to_json(const ChinchillaFit& f);

}  // namespace nfscale::scaling
