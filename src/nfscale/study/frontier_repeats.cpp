// frontier_repeats.cpp - the seed repeats of the compute-frontier trials.
#include "nfscale/study/frontier_repeats.h"

#include <algorithm>
#include <map>

#include "nfscale/scaling/fits.h"
#include "nfscale/store/results_store.h"
#include "nfscale/study/sweep.h"

namespace nfscale::study {

std::vector<uint64_t> repeat_seeds(const StudySpec& spec) {
  std::vector<uint64_t> out;
  const uint64_t top = *std::max_element(spec.seeds.begin(), spec.seeds.end());
  for (int r = 1; r <= spec.frontier_repeats; ++r) out.push_back(top + uint64_t(r));
  return out;
}

std::vector<scaling::RunPoint> searched_frontier(const StudySpec& spec, const std::vector<scaling::RunPoint>& points) {
  std::vector<scaling::RunPoint> searched;
  for (auto& p : points)
    if (std::find(spec.seeds.begin(), spec.seeds.end(), uint64_t(p.seed)) != spec.seeds.end()) searched.push_back(p);
  if (searched.empty()) return {};
  // Per (model, budget): the point of the best LR (lowest mean loss over the searched seeds).
  std::vector<scaling::RunPoint> best;
  for (auto& b : scaling::fit_best_lrs(searched)) {
    for (auto& p : searched)
      if (p.model == b.model && p.epochs == b.epochs && p.lr == b.lr) {
        scaling::RunPoint q = p;
        q.loss = b.loss;
        best.push_back(q);
        break;
      }
  }
  return scaling::extract_frontier(best);
}

int64_t register_frontier_repeats(store::ResultsStore& db, const StudySpec& spec,
                                  const std::vector<scaling::RunPoint>& points) {
  if (spec.frontier_repeats <= 0) return 0;
  int64_t n = 0;
  int64_t order = 1000000;  // after every sweep trial
  // Most compute first, so the longest repeat does not run alone at the end.
  // Each family has its own frontier (a mixed study compares two of them).
  std::vector<scaling::RunPoint> frontier;
  for (const std::string& family : spec.families()) {
    const StudySpec fs = spec.for_family(family);
    std::vector<scaling::RunPoint> mine;
    for (auto& p : points)
      if (std::find(fs.models.begin(), fs.models.end(), p.model) != fs.models.end()) mine.push_back(p);
    for (auto& p : searched_frontier(fs, mine)) frontier.push_back(p);
  }
  std::stable_sort(frontier.begin(), frontier.end(),
                   [](const scaling::RunPoint& a, const scaling::RunPoint& b) { return a.flops > b.flops; });
  for (auto& p : frontier)
    for (uint64_t seed : repeat_seeds(spec)) {
      db.add_trial(make_trial(spec, p.model, p.epochs, p.lr, seed, order++));
      ++n;
    }
  return n;
}

}  // namespace nfscale::study
