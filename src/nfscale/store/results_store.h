// results_store.h - the study's results store: trials, their claims by workers, results, eval points. One
// protocol over two SQL backends (sql_backend.h): an SQLite file (the default, workers on one host) or a
// PostgreSQL server (workers on many hosts), chosen by the location (`--db`). Claims are atomic and a dead worker's
// claim is recovered once its heartbeat is stale. Schema, states and protocol: docs/results-db.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nfscale/store/sql_backend.h"
#include "nfscale/store/trial.h"

namespace nfscale::store {

enum class OpenMode {
  Create,    // create the store (SQLite file, or the tables in the PostgreSQL database) if absent
  MustExist  // refuse a missing SQLite file or a PostgreSQL database without the store ("run a sweep first")
};

class ResultsStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Runs the protocol on `backend`: creates the schema if the store is empty, and throws UserError if it holds
  // other tables (not an nfscale results store), has a newer or unknown schema version, or (MustExist) is empty.
  explicit ResultsStore(std::unique_ptr<SqlBackend> backend, OpenMode mode = OpenMode::Create);
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  // The location for messages and logs (a URI's password replaced by ***), and the backend's name.
  const std::string& location() const;
  const char* backend_name() const;
  SqlBackend& backend() { return *backend_; }
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
  // How long a lost server connection is retried (reconnect and re-run the transaction) before giving up.
  void set_reconnect_window(double seconds) { reconnect_window_s_ = seconds; }

 private:
  void init_schema(OpenMode mode);
  double now() const;
  // Runs `body` (in a write transaction when `write`), reconnecting and re-running it when the connection is lost.
  template <class F>
  auto run(const char* operation, bool write, F&& body) const -> decltype(body());
  // UPDATE trials SET <set_sql> for the trial `worker` owns while running. When no owned row matched, throws
  // UserError explaining why, unless `applied` says a lost COMMIT of this very call had already done it.
  void owned_update(int64_t id, const std::string& worker, const char* operation, const std::string& set_sql,
                    std::vector<SqlValue> set_values, const std::function<bool(const Trial&)>& applied);
  static Trial row_to_trial(const SqlRow& row);
  std::vector<Trial> query_trials(const std::string& where_sql, const std::vector<SqlValue>& params,
                                  const char* operation) const;

  std::unique_ptr<SqlBackend> backend_;
  mutable std::recursive_mutex mutex_;  // one connection: serialise whole transactions across threads
  mutable int depth_ = 0;               // nesting of run(): only the outermost call retries
  mutable bool commit_was_lost_ = false;  // set while re-running a transaction whose COMMIT outcome is unknown
  std::function<double()> clock_;
  double reconnect_window_s_ = 60.0;
};

// Opens the store at `location`: a postgresql:// (or postgres://) URI, or an SQLite file path.
// MustExist for SQLite: the file must exist ("run `nfscale sweep` first, or pass the right --db").
std::unique_ptr<ResultsStore> open_results_store(const std::string& location, OpenMode mode = OpenMode::Create);

}  // namespace nfscale::store
