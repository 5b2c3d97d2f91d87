// frontier_repeats.h - noise measurement: after the sweep, each compute-frontier trial (best LR of its model and
// budget, on the searched seeds) is trained again with further seeds, so the fits and figures see the seed spread.
#pragma once
#include <cstdint>
#include <vector>

#include "nfscale/scaling/points.h"
#include "nfscale/study/study_spec.h"

namespace nfscale::store {
class ResultsStore;
}

namespace nfscale::study {

// The seeds the repeats use: spec.frontier_repeats seeds after the largest searched seed.
std::vector<uint64_t> repeat_seeds(const StudySpec& spec);

// The frontier of the searched seeds' points: per (model, budget) the LR with the lowest mean loss, then the
// points whose loss is below every cheaper one's (scaling::extract_frontier).
std::vector<scaling::RunPoint> searched_frontier(const StudySpec& spec, const std::vector<scaling::RunPoint>& points);

// Registers (idempotently) one trial per frontier point and repeat seed, with the frontier point's LR; returns
// how many trials the frontier asks for in total (registered now or before). 0 when frontier_repeats is 0.
int64_t register_frontier_repeats(store::ResultsStore& db, const StudySpec& spec,
                                  const std::vector<scaling::RunPoint>& points);

}  // namespace nfscale::study
