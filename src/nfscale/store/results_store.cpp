// results_store.cpp - the results-store protocol (schema, atomic claims, leases' heartbeats, results, eval points)
// written once over SqlBackend, with reconnect-and-retry when a server connection is lost.
#include "nfscale/store/results_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "nfscale/store/postgres_backend.h"
#include "nfscale/store/sqlite_backend.h"
#include "nfscale/store/store_location.h"
#include "nfscale/util/error.h"

namespace nfscale::store {
namespace {

// Every column of `trials`, in the order row_to_trial reads them.
constexpr const char* kTrialColumns =
    "id, study, model, epochs, lr, seed, config_json, claim_order, status, worker_id, claimed_at, heartbeat_at, "
    "attempts, flops, seconds, params, macs_per_image, holdout_loss, holdout_top1_error, test_metrics_json, "
    "checkpoint_path, run_dir, error, created_at, finished_at";

// The schema of both backends; {ID}, {REAL} and {INT} become the backend's column types.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials(
  id {ID},
  study TEXT NOT NULL,
  model TEXT NOT NULL,
  epochs {REAL} NOT NULL,
  lr {REAL} NOT NULL,
  seed {INT} NOT NULL,
  config_json TEXT NOT NULL DEFAULT '{}',
  claim_order {INT} NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  worker_id TEXT,
  claimed_at {REAL},
  heartbeat_at {REAL},
  attempts {INT} NOT NULL DEFAULT 0,
  flops {REAL},
  seconds {REAL},
  params {INT},
  macs_per_image {REAL},
  holdout_loss {REAL},
  holdout_top1_error {REAL},
  test_metrics_json TEXT,
  checkpoint_path TEXT,
  run_dir TEXT,
  error TEXT,
  created_at {REAL} NOT NULL,
  finished_at {REAL},
  UNIQUE (study, model, epochs, lr, seed)
);
CREATE INDEX trials_claim ON trials(study, status, claim_order, id);
CREATE TABLE eval_points(
  trial_id {INT} NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  step {INT} NOT NULL,
  epoch {REAL} NOT NULL,
  examples_seen {INT} NOT NULL,
  flops {REAL} NOT NULL,
  holdout_loss {REAL} NOT NULL,
  top1_error {REAL} NOT NULL,
  recorded_at {REAL} NOT NULL,
  PRIMARY KEY (trial_id, step)
);
)sql";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

double wall_clock() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// 12 significant digits, so values computed slightly differently (0.1 * 3 vs 0.3) name the same trial.
double canonical(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return std::strtod(buf, nullptr);
}

void require_json_object(const std::string& text, const std::string& field) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw UserError(field + ": not valid JSON (" + e.what() + "); pass a JSON object such as {}");
  }
  require(j.is_object(), field + ": must be a JSON object, got '" + text.substr(0, 80) + "'; pass e.g. {}");
}

std::string ownership_problem(const std::optional<Trial>& t, int64_t id, const std::string& worker) {
  if (!t) return "trial " + std::to_string(id) + " does not exist";
  if (t->status != TrialStatus::Running)
    return "trial " + std::to_string(id) + " is " + to_string(t->status) + ", not running";
  return "trial " + std::to_string(id) + " is owned by worker '" + t->worker_id + "', not '" + worker +
         "' (its claim went stale and was taken over)";
}

}  // namespace

ResultsStore::ResultsStore(std::unique_ptr<SqlBackend> backend, OpenMode mode)
    : backend_(std::move(backend)), clock_(wall_clock) {
  init_schema(mode);
}

ResultsStore::~ResultsStore() = default;

const std::string& ResultsStore::location() const { return backend_->location(); }
const char* ResultsStore::backend_name() const { return backend_->name(); }

double ResultsStore::now() const { return clock_(); }

void ResultsStore::set_clock(std::function<double()> clock) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  clock_ = clock ? std::move(clock) : std::function<double()>(wall_clock);
}

template <class F>
auto ResultsStore::run(const char* operation, bool write, F&& body) const -> decltype(body()) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (depth_ > 0) return body();  // inside the caller's transaction
  struct Depth {  // marks "inside a transaction" for nested calls; clears the lost-commit flag when done
    const ResultsStore& s;
    explicit Depth(const ResultsStore& store) : s(store) { ++s.depth_; }
    ~Depth() {
      --s.depth_;
      s.commit_was_lost_ = false;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  double backoff_s = 0.1;
  bool commit_lost = false;
  while (true) {
    try {
      Depth depth(*this);
      commit_was_lost_ = commit_lost;
      if (!write) return body();
      backend_->begin_write(operation);
      try {
        if constexpr (std::is_void_v<decltype(body())>) {
          body();
          backend_->commit(operation);
          return;
        } else {
          auto out = body();
          backend_->commit(operation);
          return out;
        }
      } catch (...) {
        backend_->rollback();
        throw;
      }
    } catch (const ConnectionLost& e) {
      // Nothing of an unfinished transaction survives a lost connection, so re-running it is safe; after a lost
      // COMMIT the body sees commit_was_lost_ and recognises its own earlier effect.
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > reconnect_window_s_)
        throw UserError(std::string(e.what()) + "; gave up after reconnecting for " +
                        std::to_string(static_cast<int>(waited)) +
                        " s: check that the server is up and reachable, then re-run (the trial resumes)");
      commit_lost = commit_lost || e.during_commit();
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff_s));
      backoff_s = std::min(backoff_s * 2, 5.0);
      try {
        backend_->reconnect();
      } catch (const ConnectionLost&) {
        // Still unreachable: the next attempt fails fast and waits longer.
      }
    }
  }
}

void ResultsStore::init_schema(OpenMode mode) {
  run("create schema", true, [&] {
    backend_->lock_schema("create schema");
    const auto tables = backend_->table_names();
    if (std::find(tables.begin(), tables.end(), "meta") == tables.end()) {
      require(tables.empty(), "results database " + location() + ": a " + backend_->name() +
                                  " database but not an nfscale results database (tables exist, no 'meta' table); "
                                  "pass another database");
      require(mode == OpenMode::Create, "results database " + location() +
                                            " holds no nfscale results yet; run `nfscale sweep` or `nfscale study` "
                                            "with this --db first, or pass the right --db");
      std::string ddl = replace_all(kSchemaSql, "{ID}", backend_->id_column_type());
      ddl = replace_all(ddl, "{REAL}", backend_->real_type());
      ddl = replace_all(ddl, "{INT}", backend_->integer_type());
      backend_->exec_script(ddl, "create schema");
      backend_->exec("INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('created_at', ?)",
                     {std::to_string(kSchemaVersion), std::to_string(now())}, "create schema");
      return;
    }
    int version = schema_version();
    require(version <= kSchemaVersion, "results database " + location() + ": schema_version " +
                                           std::to_string(version) + " is newer than this build supports (" +
                                           std::to_string(kSchemaVersion) + "); use a newer nfscale");
    require(version == kSchemaVersion, "results database " + location() + ": unknown schema_version " +
                                           std::to_string(version) + "; recreate the database");
  });
}

int ResultsStore::schema_version() const {
  return run("read schema_version", false, [&] {
    auto r = backend_->exec("SELECT value FROM meta WHERE key='schema_version'", {}, "read schema_version");
    require(!r.rows.empty(),
            "results database " + location() + ": meta table has no schema_version; recreate the database");
    std::string v = r.rows[0].text(0);
    try {
      return std::stoi(v);
    } catch (const std::exception&) {
      throw UserError("results database " + location() + ": schema_version '" + v + "' is not a number; recreate it");
    }
  });
}

int64_t ResultsStore::add_trial(const TrialSpec& spec, bool* inserted) {
  require(!spec.study.empty(), "trial spec: study name is empty; give the study a name");
  require(!spec.model.empty(), "trial spec: model is empty; name a model such as F0");
  require(spec.epochs > 0.0, "trial spec: epochs must be > 0 (got " + std::to_string(spec.epochs) + ")");
  require(spec.lr > 0.0, "trial spec: lr must be > 0 (got " + std::to_string(spec.lr) + ")");
  require_json_object(spec.config_json, "trial spec config_json");
  const std::vector<SqlValue> key = {spec.study, spec.model, canonical(spec.epochs), canonical(spec.lr), spec.seed};
  return run("add trial", true, [&] {
    std::vector<SqlValue> values = key;
    values.insert(values.end(), {spec.config_json, spec.claim_order, now()});
    auto ins = backend_->exec(
        "INSERT INTO trials(study, model, epochs, lr, seed, config_json, claim_order, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study, model, epochs, lr, seed) DO NOTHING RETURNING id",
        values, "add trial");
    if (inserted) *inserted = !ins.rows.empty();
    if (!ins.rows.empty()) return ins.rows[0].i64(0);
    auto find = backend_->exec("SELECT id FROM trials WHERE study=? AND model=? AND epochs=? AND lr=? AND seed=?",
                               key, "add trial");
    require(!find.rows.empty(), "results database " + location() + ": add trial: row vanished after insert");
    return find.rows[0].i64(0);
  });
}

std::optional<Trial> ResultsStore::claim_next(const std::string& study, const std::string& worker,
                                              double stale_after_s, int max_attempts) {
  require(!worker.empty(), "claim_next: worker id is empty; give each worker a unique id");
  require(stale_after_s > 0.0, "claim_next: stale_after_s must be > 0 (a few heartbeat intervals)");
  require(max_attempts >= 1, "claim_next: max_attempts must be >= 1");
  // Fixed before the transaction: a re-run after a lost COMMIT recognises its own claim by claimed_at.
  const double t = now();
  const double cutoff = t - stale_after_s;
  return run("claim trial", true, [&]() -> std::optional<Trial> {
    if (commit_was_lost_) {
      auto mine = query_trials("WHERE study=? AND worker_id=? AND status='running' AND claimed_at=?",
                               {study, worker, t}, "claim trial");
      if (!mine.empty()) return mine.front();
    }
    const std::string skip = backend_->skip_locked();
    backend_->exec(
        "UPDATE trials SET status='failed', finished_at=?, error='worker ' || coalesce(worker_id, '?') || "
        "' stopped heartbeating; gave up after ' || attempts || ' attempts (use --retry-failed to try again)' "
        "WHERE id IN (SELECT id FROM trials WHERE study=? AND status='running' AND heartbeat_at < ? AND "
        "attempts >= ?" + skip + ")",
        {t, study, cutoff, int64_t{max_attempts}}, "claim trial");
    auto pick = backend_->exec(
        "SELECT id FROM trials WHERE study=? AND (status='pending' OR (status='running' AND heartbeat_at < ?)) "
        "ORDER BY claim_order, id LIMIT 1" + skip,
        {study, cutoff}, "claim trial");
    if (pick.rows.empty()) return std::nullopt;
    const int64_t id = pick.rows[0].i64(0);
    backend_->exec(
        "UPDATE trials SET status='running', worker_id=?, claimed_at=?, heartbeat_at=?, attempts=attempts+1 "
        "WHERE id=?",
        {worker, t, t, id}, "claim trial");
    return trial(id);
  });
}

bool ResultsStore::heartbeat(int64_t id, const std::string& worker) {
  return run("heartbeat", true, [&] {
    auto r = backend_->exec("UPDATE trials SET heartbeat_at=? WHERE id=? AND worker_id=? AND status='running'",
                            {now(), id, worker}, "heartbeat");
    return r.affected > 0;
  });
}

void ResultsStore::owned_update(int64_t id, const std::string& worker, const char* operation,
                                const std::string& set_sql, std::vector<SqlValue> set_values,
                                const std::function<bool(const Trial&)>& applied) {
  set_values.insert(set_values.end(), {id, worker});
  run(operation, true, [&] {
    auto r = backend_->exec("UPDATE trials SET " + set_sql + " WHERE id=? AND worker_id=? AND status='running'",
                            set_values, operation);
    if (r.affected > 0) return;
    auto t = trial(id);
    if (commit_was_lost_ && t && applied && applied(*t)) return;  // our lost COMMIT had gone through
    throw UserError("results database " + location() + ": " + operation + " refused: " +
                    ownership_problem(t, id, worker));
  });
}

void ResultsStore::set_run_dir(int64_t id, const std::string& worker, const std::string& run_dir) {
  owned_update(id, worker, "set run dir", "run_dir=?", {run_dir}, nullptr);
}

void ResultsStore::set_checkpoint(int64_t id, const std::string& worker, const std::string& checkpoint_path) {
  owned_update(id, worker, "set checkpoint", "checkpoint_path=?", {checkpoint_path}, nullptr);
}

void ResultsStore::finish(int64_t id, const std::string& worker, const TrialResult& r) {
  require_json_object(r.test_metrics_json, "trial " + std::to_string(id) + " result test_metrics_json");
  const double t = now();
  owned_update(id, worker, "finish trial",
               "status='done', flops=?, seconds=?, params=?, macs_per_image=?, holdout_loss=?, holdout_top1_error=?, "
               "test_metrics_json=?, checkpoint_path=coalesce(nullif(?, ''), checkpoint_path), "
               "run_dir=coalesce(nullif(?, ''), run_dir), error=NULL, finished_at=?, heartbeat_at=?",
               {r.flops, r.seconds, r.params, r.macs_per_image, r.holdout_loss, r.holdout_top1_error,
                r.test_metrics_json, r.checkpoint_path, r.run_dir, t, t},
               [&](const Trial& now_) { return now_.status == TrialStatus::Done && now_.worker_id == worker; });
}

void ResultsStore::fail(int64_t id, const std::string& worker, const std::string& error) {
  owned_update(id, worker, "fail trial", "status='failed', error=?, finished_at=?", {error, now()},
               [&](const Trial& t) { return t.status == TrialStatus::Failed && t.worker_id == worker; });
}

void ResultsStore::release(int64_t id, const std::string& worker) {
  owned_update(id, worker, "release trial", "status='pending', worker_id=NULL, claimed_at=NULL, heartbeat_at=NULL",
               {}, [](const Trial& t) { return t.status == TrialStatus::Pending && t.worker_id.empty(); });
}

int64_t ResultsStore::reset_failed(const std::string& study) {
  return run("reset failed trials", true, [&] {
    return backend_
        ->exec("UPDATE trials SET status='pending', worker_id=NULL, claimed_at=NULL, heartbeat_at=NULL, "
               "finished_at=NULL WHERE study=? AND status='failed'",
               {study}, "reset failed trials")
        .affected;
  });
}

void ResultsStore::add_eval_point(int64_t id, const EvalPoint& p) {
  run("add eval point", true, [&] {
    backend_->exec(
        "INSERT INTO eval_points(trial_id, step, epoch, examples_seen, flops, holdout_loss, top1_error, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trial_id, step) DO UPDATE SET epoch=excluded.epoch, "
        "examples_seen=excluded.examples_seen, flops=excluded.flops, holdout_loss=excluded.holdout_loss, "
        "top1_error=excluded.top1_error, recorded_at=excluded.recorded_at",
        {id, p.step, p.epoch, p.examples_seen, p.flops, p.holdout_loss, p.top1_error, now()}, "add eval point");
  });
}

Trial ResultsStore::row_to_trial(const SqlRow& s) {
  Trial t;
  t.id = s.i64(0);
  t.spec.study = s.text(1);
  t.spec.model = s.text(2);
  t.spec.epochs = s.f64(3);
  t.spec.lr = s.f64(4);
  t.spec.seed = s.i64(5);
  t.spec.config_json = s.text(6);
  t.spec.claim_order = s.i64(7);
  t.status = parse_trial_status(s.text(8), "results database trial " + std::to_string(t.id));
  t.worker_id = s.text(9);
  t.claimed_at = s.opt_f64(10);
  t.heartbeat_at = s.opt_f64(11);
  t.attempts = static_cast<int>(s.i64(12));
  t.checkpoint_path = s.text(20);
  t.run_dir = s.text(21);
  t.error = s.text(22);
  t.created_at = s.f64(23);
  t.finished_at = s.opt_f64(24);
  if (t.status == TrialStatus::Done) {
    TrialResult r;
    r.flops = s.f64(13);
    r.seconds = s.f64(14);
    r.params = s.i64(15);
    r.macs_per_image = s.f64(16);
    r.holdout_loss = s.f64(17);
    r.holdout_top1_error = s.f64(18);
    r.test_metrics_json = s.is_null(19) ? "{}" : s.text(19);
    r.checkpoint_path = t.checkpoint_path;
    r.run_dir = t.run_dir;
    t.result = r;
  }
  return t;
}

std::vector<Trial> ResultsStore::query_trials(const std::string& where_sql, const std::vector<SqlValue>& params,
                                              const char* operation) const {
  return run(operation, false, [&] {
    auto r = backend_->exec(std::string("SELECT ") + kTrialColumns + " FROM trials " + where_sql, params, operation);
    std::vector<Trial> out;
    for (auto& row : r.rows) out.push_back(row_to_trial(row));
    return out;
  });
}

std::vector<Trial> ResultsStore::trials(const std::string& study) const {
  return query_trials("WHERE study=? ORDER BY claim_order, id", {study}, "list trials");
}

std::optional<Trial> ResultsStore::trial(int64_t id) const {
  auto v = query_trials("WHERE id=?", {id}, "read trial");
  if (v.empty()) return std::nullopt;
  return v.front();
}

std::vector<EvalPoint> ResultsStore::eval_points(int64_t id) const {
  return run("list eval points", false, [&] {
    auto r = backend_->exec(
        "SELECT step, epoch, examples_seen, flops, holdout_loss, top1_error FROM eval_points WHERE trial_id=? "
        "ORDER BY step",
        {id}, "list eval points");
    std::vector<EvalPoint> out;
    for (auto& s : r.rows) out.push_back({s.i64(0), s.f64(1), s.i64(2), s.f64(3), s.f64(4), s.f64(5)});
    return out;
  });
}

StudyCounts ResultsStore::counts(const std::string& study) const {
  return run("count trials", false, [&] {
    auto r = backend_->exec("SELECT status, count(*) FROM trials WHERE study=? GROUP BY status", {study},
                            "count trials");
    StudyCounts c;
    for (auto& s : r.rows) {
      switch (parse_trial_status(s.text(0), "results database " + location())) {
        case TrialStatus::Pending: c.pending = s.i64(1); break;
        case TrialStatus::Running: c.running = s.i64(1); break;
        case TrialStatus::Done: c.done = s.i64(1); break;
        case TrialStatus::Failed: c.failed = s.i64(1); break;
      }
    }
    return c;
  });
}

std::vector<std::string> ResultsStore::studies() const {
  return run("list studies", false, [&] {
    std::vector<std::string> out;
    for (auto& r : backend_->exec("SELECT DISTINCT study FROM trials ORDER BY study", {}, "list studies").rows)
      out.push_back(r.text(0));
    return out;
  });
}

std::unique_ptr<ResultsStore> open_results_store(const std::string& location, OpenMode mode) {
  require(!location.empty(),
          "results database location is empty; pass --db with a file path (e.g. studies/x/results.sqlite) or a "
          "postgresql:// URI");
  if (store_kind(location) == StoreKind::Postgres)
    return std::make_unique<ResultsStore>(std::make_unique<PostgresBackend>(location), mode);
  require(mode == OpenMode::Create || std::filesystem::exists(location),
          "results database " + location + " does not exist; run `nfscale sweep` or `nfscale study` first, or pass "
          "the right --db");
  return std::make_unique<ResultsStore>(std::make_unique<SqliteBackend>(location), mode);
}

}  // namespace nfscale::store
