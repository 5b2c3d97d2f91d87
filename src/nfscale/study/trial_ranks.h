// trial_ranks.h - one sweep trial trained as N data-parallel ranks on this host (`--trial-nproc N`): the worker
// writes the trial's configuration into its run dir and starts this binary's hidden `trial-rank` command N times
// through the dist launcher; rank 0 alone writes the outcome there, and the worker (the only process that talks to
// the results store) records it. Also the store's record of a finished training, shared with the in-process path.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nfscale/store/trial.h"

namespace nfscale::train {
struct TrainConfig;
struct TrainHooks;
struct TrainResult;
struct EvalPoint;
}  // namespace nfscale::train

namespace nfscale::study {

// How one attempt at a trial ended.
struct TrialAttempt {
  enum class Status {
    Completed,    // result is set
    Interrupted,  // stopped at a step boundary with a checkpoint (signal, or should_stop)
    Diverged,     // error holds the trainer's message; the trial fails
    RanksFailed   // a rank crashed or exited with an error: nothing recorded, the trial is given back for a retry
  };
  Status status = Status::RanksFailed;
  store::TrialResult result;
  std::vector<store::EvalPoint> evals;  // every evaluation in the run dir's metrics.jsonl (all attempts)
  std::string error;
  int stop_signal = 0;  // the signal the ranks were stopped with (SIGTERM also for should_stop); 0 = none
};

struct TrialRanksOptions {
  int nproc = 2;                     // ranks (>= 2)
  int threads_per_rank = 1;          // intra-op threads of each rank (--threads of the ranks)
  std::function<bool()> should_stop; // polled every 20 ms; true = the ranks checkpoint and stop together
};

// Throws UserError naming --trial-nproc unless `config`'s global batch splits over `nproc` ranks (batch =
// micro-batch per rank x ranks x accumulation steps). Workers check the study's settings before claiming a trial.
void check_trial_split(const train::TrainConfig& config, int nproc);

// Worker side: trains `config` (resuming from <run_dir>/checkpoint.pt if present) as options.nproc ranks of this
// binary on loopback, and blocks until they have exited. The global batch is config.batch, as in one process.
TrialAttempt run_trial_as_ranks(const train::TrainConfig& config, const TrialRanksOptions& options);

// Rank side (inside each rank, called by the hidden `nfscale trial-rank --run-dir DIR` command): trains the
// configuration the worker wrote into `run_dir` with `hooks` (carrying the communicator); rank 0 writes the outcome.
void train_trial_rank(const std::string& run_dir, const train::TrainHooks& hooks);

// The results store's record of a finished training and of one of its evaluations (the hold-out set's metrics,
// or the test set's when there is no hold-out set).
store::TrialResult to_trial_result(const train::TrainResult& r, const std::string& run_dir);
store::EvalPoint to_store_point(const train::EvalPoint& p);

}  // namespace nfscale::study
