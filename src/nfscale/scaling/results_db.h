// results_db.h - the study's results database (SQLite): trials, their claims by workers, results, eval points.
// Many worker processes share one file; claims are atomic (BEGIN IMMEDIATE) and a dead worker's claim is recovered
// once its heartbeat is stale. Schema, states and protocol: docs/results-db.md.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nfscale/scaling/trial.h"

struct sqlite3;

namespace nfscale::scaling {

class ResultsDb {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens (creating if absent) the database at `path`: WAL journal, busy_timeout, foreign keys on.
  // Throws UserError if the file is not an SQLite database, is not an nfscale results database, or has a newer
  // schema version.
  explicit ResultsDb(const std::string& path, double busy_timeout_s = 60.0);
  ~ResultsDb();
  ResultsDb(const ResultsDb&) = delete;
  ResultsDb& operator=(const ResultsDb&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const;

  // Adds a pending trial; if (study, model, epochs, lr, seed) exists already, returns the existing id unchanged.
  // Usable at any time (e.g. the adaptive LR search adds the next LR after seeing results).
  // `inserted` (optional) tells whether a new row was created.
  int64_t add_trial(const TrialSpec& spec, bool* inserted = nullptr);

  // Atomically claims the next trial of `study` for `worker`: a pending one, or a running one whose heartbeat is
  // older than stale_after_s (its worker is presumed dead), lowest claim_order first, then lowest id. The trial
  // becomes running, owned by `worker`, attempts+1. Stale trials that already used max_attempts claims are marked
  // failed instead of being claimed again. Returns nullopt when nothing is claimable.
  std::optional<Trial> claim_next(const std::string& study, const std::string& worker, double stale_after_s,
                                  int max_attempts = 3);

  // Refreshes the owner's heartbeat. Returns false (and changes nothing) if `worker` no longer owns trial `id`.
  bool heartbeat(int64_t id, const std::string& worker);
  // Records where the running trial writes and its latest checkpoint (so a later claim can resume).
  // Throws UserError if `worker` does not own the running trial.
  void set_run_dir(int64_t id, const std::string& worker, const std::string& run_dir);
  void set_checkpoint(int64_t id, const std::string& worker, const std::string& checkpoint_path);

  // Stores an eval point; a second point for the same (trial, step) replaces the first (a resumed run re-logs).
  void add_eval_point(int64_t id, const EvalPoint& point);

  // Marks trial `id` done with `result`. Throws UserError if `worker` does not own it while running
  // (its claim went stale and was taken over, or it was never claimed by this worker).
  void finish(int64_t id, const std::string& worker, const TrialResult& result);
  // Marks trial `id` failed with `error`; same ownership rule as finish.
  void fail(int64_t id, const std::string& worker, const std::string& error);

  // Gives a running trial back: pending again, unowned (its run dir and checkpoint stay, so the next claim
  // resumes). Used when a worker stops cleanly mid-trial, or for the claim of a worker known to be dead.
  // Same ownership rule as finish.
  void release(int64_t id, const std::string& worker);
  // Failed trials of `study` back to pending (for --retry-failed). Returns how many.
  int64_t reset_failed(const std::string& study);

  std::vector<Trial> trials(const std::string& study) const;  // ordered by claim_order, id
  std::optional<Trial> trial(int64_t id) const;
  std::vector<EvalPoint> eval_points(int64_t id) const;      // ordered by step
  StudyCounts counts(const std::string& study) const;
  std::vector<std::string> studies() const;                   // sorted

  // Replaces the wall clock (unix seconds) used for claims, heartbeats and timestamps; for tests.
  void set_clock(std::function<double()> clock);

 private:
  class Stmt;
  friend class Stmt;
  void exec(const char* sql, const char* operation);
  void init_schema();
  double now() const;
  template <class F>
  auto write_txn(const char* operation, F&& body) -> decltype(body());
  [[noreturn]] void fail_sqlite(int rc, const char* operation) const;
  static Trial row_to_trial(const Stmt& s);
  // UPDATE trials SET <set_sql> for the trial `worker` owns while running; `bind` fills the SET slots and returns
  // how many it used. Throws UserError explaining why when no owned row matched.
  void owned_update(int64_t id, const std::string& worker, const char* operation, const std::string& set_sql,
                    const std::function<int(Stmt&)>& bind);
  std::vector<Trial> query_trials(const char* where_sql, const std::function<void(Stmt&)>& bind,
                                  const char* operation) const;

  std::string path_;
  sqlite3* db_ = nullptr;
  mutable std::recursive_mutex mutex_;  // one connection: serialise whole transactions across threads
  std::function<double()> clock_;
};

}  // namespace nfscale::scaling
