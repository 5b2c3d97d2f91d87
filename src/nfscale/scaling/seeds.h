// seeds.h - repeated seeds in the scaling fits: one cell per (model, params, epochs, examples, flops, lr) whose loss
// is the mean over its seeds, the pooled seed-to-seed spread of log loss, and the seed-noise draw the bootstraps use.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/scaling/points.h"

namespace nfscale {
class SplitMix;
}

namespace nfscale::scaling {

// Runs that differ only in their seed, averaged.
struct SeedCells {
  std::vector<RunPoint> cells;  // loss = mean loss over the cell's seeds (seed of the first run, origin lists runs)
  std::vector<int> replicates;  // seeds per cell (same order)
  // Pooled within-cell standard deviation of log loss, s^2 = sum_i sum_j (log L_ij - mean_i)^2 / sum_i (k_i - 1),
  // over the cells with >= 2 seeds; NaN when no cell is repeated (dof = 0).
  double log_sd = kMissing;
  int dof = 0;             // sum over cells of (k_i - 1)
  int repeated_cells = 0;  // cells with >= 2 seeds
  int runs = 0;            // input points
  bool has_noise() const { return dof > 0; }
};

// Groups points that share model, params, epochs, examples, flops and lr but have different seeds (top-1 error and
// origin are ignored). Two runs with the same key and the same seed stay in separate cells (they differ in
// something the points do not record). Cells keep the first-seen order.
SeedCells aggregate_seeds(const std::vector<RunPoint>& points);

// One bootstrap draw of the cell means under the measured seed noise: every cell's mean loss is multiplied by
// exp(sigma / sqrt(k_i) * z_i), z_i ~ N(0, 1), with sigma^2 = log_sd^2 * dof / chi2(dof) drawn once per call (the
// uncertainty of the spread itself, from few repeated cells, widens the draw). Cells without repeats get the same
// pooled noise as repeated ones. Returns the cells unchanged when no cell is repeated.
std::vector<RunPoint> draw_seed_noise(const SeedCells& cells, SplitMix& rng);

// The seed-noise sd of log loss for one draw: log_sd * sqrt(dof / chi2(dof)) (the spread's own uncertainty);
// NaN when no cell is repeated.
double draw_seed_sigma(const SeedCells& cells, SplitMix& rng);

// Standard normal draw (Box-Muller) from the project's counter-based generator.
double normal_draw(SplitMix& rng);

nlohmann::json to_json(const SeedCells& s);
// "seed noise: sd(log L) = 0.012 from 8 repeated cells (8 dof), 40 runs in 32 cells" or "no repeated seeds ...".
std::string describe_seed_noise(const SeedCells& s);

}  // namespace nfscale::scaling
