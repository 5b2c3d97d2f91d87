// seeds.cpp - seed averaging, pooled seed spread and the seed-noise bootstrap draw (see seeds.h).
#include "nfscale/scaling/seeds.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "nfscale/util/rng.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {
namespace {

// Identity of a run without its seed; NaN-safe (missing fields print as "nan").
std::string cell_key(const RunPoint& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "|%.17g|%.17g|%.17g|%.17g|%.17g", p.params, p.epochs, p.examples, p.flops, p.lr);
  return p.model + buf;
}

}  // namespace

double normal_draw(SplitMix& rng) {
  double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

SeedCells aggregate_seeds(const std::vector<RunPoint>& points) {
  SeedCells out;
  out.runs = static_cast<int>(points.size());
  // key -> cells with that key; a run joins the first one that does not hold its seed yet (the same seed twice
  // means the runs differ in something the points do not record, so they stay separate cells).
  std::map<std::string, std::vector<size_t>> index;
  std::vector<std::set<int>> seeds_in;
  std::vector<std::vector<double>> logs;
  std::vector<double> sums;
  for (const RunPoint& p : points) {
    auto& candidates = index[cell_key(p)];
    size_t c = out.cells.size();
    for (size_t k : candidates)
      if (!seeds_in[k].count(p.seed)) {
        c = k;
        break;
      }
    if (c == out.cells.size()) {
      candidates.push_back(c);
      out.cells.push_back(p);
      out.replicates.push_back(0);
      seeds_in.emplace_back();
      logs.emplace_back();
      sums.push_back(0);
    } else {
      out.cells[c].origin += ", " + p.origin;
    }
    seeds_in[c].insert(p.seed);
    out.replicates[c] += 1;
    sums[c] += p.loss;
    logs[c].push_back(std::log(p.loss));  // NaN stays NaN: the fits' field checks name the point
  }
  double ss = 0;
  for (size_t c = 0; c < out.cells.size(); ++c) {
    const auto& l = logs[c];
    out.cells[c].loss = sums[c] / l.size();
    if (l.size() < 2) continue;
    double mean_log = 0;
    for (double v : l) mean_log += v / l.size();
    for (double v : l) ss += (v - mean_log) * (v - mean_log);
    out.dof += static_cast<int>(l.size()) - 1;
    out.repeated_cells += 1;
  }
  if (out.dof > 0) out.log_sd = std::sqrt(ss / out.dof);
  return out;
}

double draw_seed_sigma(const SeedCells& s, SplitMix& rng) {
  if (!s.has_noise() || !std::isfinite(s.log_sd)) return kMissing;
  double chi2 = 0;
  for (int k = 0; k < s.dof; ++k) {
    double z = normal_draw(rng);
    chi2 += z * z;
  }
  return s.log_sd * std::sqrt(s.dof / std::max(chi2, 1e-12));
}

std::vector<RunPoint> draw_seed_noise(const SeedCells& s, SplitMix& rng) {
  std::vector<RunPoint> cells = s.cells;
  const double sigma = draw_seed_sigma(s, rng);
  if (!std::isfinite(sigma)) return cells;  // no repeated cell: no noise to draw
  for (size_t c = 0; c < cells.size(); ++c) cells[c].loss *= std::exp(sigma / std::sqrt(s.replicates[c]) * normal_draw(rng));
  return cells;
}

nlohmann::json to_json(const SeedCells& s) {
  return {{"runs", s.runs},
          {"cells", s.cells.size()},
          {"repeated_cells", s.repeated_cells},
          {"dof", s.dof},
          {"log_sd", finite_or_null(s.log_sd)}};
}

std::string describe_seed_noise(const SeedCells& s) {
  char buf[256];
  if (!s.has_noise())
    std::snprintf(buf, sizeof buf,
                  "no repeated seeds (%d runs): intervals reflect the scatter of the points only, not seed noise",
                  s.runs);
  else
    std::snprintf(buf, sizeof buf, "seed noise sd(log L) = %.3g from %d repeated cell(s) (%d dof); %d runs in %zu cells",
                  s.log_sd, s.repeated_cells, s.dof, s.runs, s.cells.size());
  return buf;
}

}  // namespace nfscale::scaling
