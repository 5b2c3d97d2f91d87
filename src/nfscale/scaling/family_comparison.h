// family_comparison.h - two model families (NFNets and ViTs) compared at equal pre-training compute: their
// frontier power laws evaluated at common compute levels with a bootstrap interval of the loss ratio, the best
// loss and top-1 error each family actually reached by then, the fitted exponents side by side, and a verdict
// sentence computed from the intervals (which family is ahead where and by how much, or "indistinguishable").
// Definitions in docs/scaling.md ("Comparing two families").
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/bootstrap.h"
#include "nfscale/scaling/points.h"

namespace nfscale::scaling {

struct FrontierFit;

// One family's side of the comparison: its name, its frontier fit, and its raw run points (for the top-1 error of
// the best run, averaged over the seeds of that cell).
struct FamilySide {
  std::string family;
  const FrontierFit* fit = nullptr;
  std::vector<RunPoint> points;
};

// What one family reached by compute C: its best frontier cell with compute <= C.
struct BestByCompute {
  std::string model;
  double epochs = kMissing, lr = kMissing, flops = kMissing;
  double loss = kMissing;      // the cell's loss (mean over seeds)
  double top1_err = kMissing;  // mean over the cell's runs that report it
};

struct ComparisonLevel {
  double flops = 0;
  Estimate fitted_a, fitted_b;  // each family's power law at this compute, with its bootstrap interval
  BestByCompute best_a, best_b;
  // ln(L_a / L_b) of the two fitted curves: value from the point fits, interval from the bootstrap replicates of
  // both fits (independent fits; replicate k of one paired with replicate k of the other). < 0: family a lower.
  Estimate log_ratio;
  int leader = 0;               // -1: a ahead (interval below 0), +1: b ahead (above 0), 0: indistinguishable
};

struct FamilyComparison {
  std::string family_a, family_b;
  double overlap_lo = 0, overlap_hi = 0;  // the compute range both frontiers cover
  std::vector<ComparisonLevel> levels;    // log-spaced over the overlap, ends included
  Estimate exponent_a, exponent_b;        // the power-law exponents b of L = a C^b, with their intervals
  Estimate exponent_diff;                 // b_a - b_b, interval from paired replicates
  std::string error;                      // why there are no levels (e.g. the frontiers do not overlap)
  std::string verdict;                    // one or two sentences computed from the intervals
};

// Needs both fits. `levels` >= 2 compute levels over the overlap of the two frontiers' compute ranges (one level
// when the overlap is a single point). Never throws for data reasons: an empty overlap is recorded in `error` and
// the verdict says so.
FamilyComparison compare_families(const FamilySide& a, const FamilySide& b, int levels = 5);

nlohmann::json to_json(const FamilyComparison& c);
// A readable table of the levels, the exponents and the verdict.
std::string format_comparison(const FamilyComparison& c);

}  // namespace nfscale::scaling
