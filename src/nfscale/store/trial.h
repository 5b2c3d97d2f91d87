// trial.h - value types of the results store: a trial's spec, its outcome, its state and its eval points.
// A trial is one (study, model, epoch budget, learning rate, seed) training run (docs/results-db.md).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace nfscale::store {

// Life cycle: pending -> running (claimed) -> done | failed; failed -> pending only by reset_failed();
// running -> running (another worker) when the owner's heartbeat goes stale.
enum class TrialStatus { Pending, Running, Done, Failed };

// "pending" | "running" | "done" | "failed".
std::string to_string(TrialStatus status);
// Inverse of to_string; throws UserError naming `what` (e.g. the database file) on an unknown word.
TrialStatus parse_trial_status(const std::string& text, const std::string& what = "trial status");

// What to train. (study, model, epochs, lr, seed) identifies the trial; lr and epochs are canonicalised to
// 12 significant digits before storage so 0.1+0.2 and 0.3 name the same trial.
struct TrialSpec {
  std::string study;
  std::string model;
  double epochs = 0.0;
  double lr = 0.0;
  int64_t seed = 0;
  std::string config_json = "{}";  // the full training config, a JSON object
  int64_t claim_order = 0;          // lower is claimed first; ties by insertion order (id)
};

// What a finished trial measured.
struct TrialResult {
  double flops = 0.0;             // training FLOPs
  double seconds = 0.0;           // wall-clock training seconds
  int64_t params = 0;
  double macs_per_image = 0.0;    // forward multiply-adds per image at the training resolution
  double holdout_loss = 0.0;
  double holdout_top1_error = 0.0;
  std::string test_metrics_json = "{}";  // any further metrics, a JSON object
  std::string checkpoint_path;
  std::string run_dir;
};

// One row of the trials table.
struct Trial {
  int64_t id = 0;
  TrialSpec spec;
  TrialStatus status = TrialStatus::Pending;
  std::string worker_id;               // empty when never claimed
  std::optional<double> claimed_at;    // unix seconds
  std::optional<double> heartbeat_at;  // unix seconds
  int attempts = 0;                    // number of claims so far
  std::optional<TrialResult> result;   // set when status == Done
  std::string checkpoint_path;         // latest checkpoint (set during training or by finish)
  std::string run_dir;                 // where the run writes; the caller resumes from here
  std::string error;                   // last failure text (kept until the trial is done)
  double created_at = 0.0;
  std::optional<double> finished_at;
};

// One intermediate evaluation of a trial; unique per (trial, step).
struct EvalPoint {
  int64_t step = 0;
  double epoch = 0.0;
  int64_t examples_seen = 0;
  double flops = 0.0;
  double holdout_loss = 0.0;
  double top1_error = 0.0;
};

struct StudyCounts {
  int64_t pending = 0, running = 0, done = 0, failed = 0;
  int64_t total() const { return pending + running + done + failed; }
};

}  // namespace nfscale::store
