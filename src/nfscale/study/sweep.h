// sweep.h - runs a study's trials (models x budgets x LRs x seeds) against the shared results database:
// registration (grid or adaptive LR search), worker loops that claim, train (resuming from checkpoints) and record,
// and multi-process workers sharing one results store (SQLite file or PostgreSQL server).
#pragma once
#include <cstdint>
#include <string>

#include "nfscale/study/study_spec.h"

namespace nfscale::store {
class ResultsStore;
struct TrialSpec;
}

namespace nfscale::study {

struct SweepOptions {
  int workers = 1;              // worker processes (this one included)
  int trial_nproc = 1;          // data-parallel ranks per trial (trial_ranks.h); 1 = the worker trains in-process
  double stale_after_s = 90.0;  // a running trial whose heartbeat is older than this is reclaimed
  bool retry_failed = false;    // put failed trials back to pending first
  std::string worker_id;        // "" = <hostname>:<pid>
  bool verbose = true;           // run_sweep: print the study's progress line and one line per finished trial
  std::string phase = "sweep";   // name of this phase on the progress line (sweep, seed repeats, planner check)
};

struct SweepSummary {
  int64_t trials_run = 0;       // trials this process trained to completion
  int64_t trials_failed = 0;
  bool interrupted = false;     // a signal (or a lost claim) stopped this process mid-trial
  int64_t done = 0, failed = 0, pending = 0, running = 0;  // database counts at the end
  double seconds = 0.0;
};

// The trial of `model` at `epochs` and base LR `lr` with `seed`: the study's shared training settings, its run dir
// under <out_dir>/trials/, claimed in `order`.
store::TrialSpec make_trial(const StudySpec& spec, const std::string& model, double epochs, double lr,
                            uint64_t seed, int64_t order);

// Writes <out_dir>/study.json (the resolved spec) and registers the initial trials (idempotent).
void register_study(store::ResultsStore& db, const StudySpec& spec);

// One worker: claim -> train (resume) -> record, until nothing is left. Adaptive LR expansion happens here.
// With trial_nproc N > 1 each trial trains as N ranks of this binary (same global batch, intra-op threads split
// between them); the worker alone records rank 0's result. A crashed rank ends the attempt and the trial is given
// back (pending, resumed from its checkpoint by the next claim); the same trial failing so twice in a row on this
// worker throws UserError.
SweepSummary run_worker(const StudySpec& spec, const SweepOptions& options);

// Registers the study, starts options.workers-1 extra worker processes (this binary, `sweep --worker`), runs a
// worker in this process, waits for the others. Re-running after a kill resumes unfinished trials from their
// checkpoints and never repeats a finished one.
SweepSummary run_sweep(const StudySpec& spec, const SweepOptions& options);

// The adaptive LR search's decision for one (model, budget, seed) group, given the LRs tried so far and their
// held-out losses (+inf for diverged, NaN for unfinished). Returns the next LR to try, or 0 when the optimum is
// bracketed (loss rises on both sides), the search hit max_trials, or results are still outstanding.
double next_adaptive_lr(const std::vector<std::pair<double, double>>& lr_loss, int max_trials);

// Claim order of a (model, budget) cell's trials: lower is claimed first; the cell with the most work ahead on its
// model's chain of budgets (MACs per image x remaining epochs) comes first.
int64_t order_of(const StudySpec& spec, const std::string& model, double epochs);

// The LRs an adaptive search opens a (model, budget) group with, all at once so the group's first round runs in
// parallel: one centre c gives {c/2, c, 2c} (the smallest set that can be bracketed); several LRs are used as given.
// The first budget is centred on the study's `lrs`, each later budget on the previous budget's best LR.
std::vector<double> adaptive_start_lrs(const std::vector<double>& lrs);

}  // namespace nfscale::study
