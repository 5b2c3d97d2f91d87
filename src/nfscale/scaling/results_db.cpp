// results_db.cpp - SQLite implementation of the results database: schema, atomic claims, results, eval points.
#include "nfscale/scaling/results_db.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

// Every column of `trials`, in the order row_to_trial reads them.
constexpr const char* kTrialColumns =
    "id, study, model, epochs, lr, seed, config_json, claim_order, status, worker_id, claimed_at, heartbeat_at, "
    "attempts, flops, seconds, params, macs_per_image, holdout_loss, holdout_top1_error, test_metrics_json, "
    "checkpoint_path, run_dir, error, created_at, finished_at";

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  study TEXT NOT NULL,
  model TEXT NOT NULL,
  epochs REAL NOT NULL,
  lr REAL NOT NULL,
  seed INTEGER NOT NULL,
  config_json TEXT NOT NULL DEFAULT '{}',
  claim_order INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  worker_id TEXT,
  claimed_at REAL,
  heartbeat_at REAL,
  attempts INTEGER NOT NULL DEFAULT 0,
  flops REAL,
  seconds REAL,
  params INTEGER,
  macs_per_image REAL,
  holdout_loss REAL,
  holdout_top1_error REAL,
  test_metrics_json TEXT,
  checkpoint_path TEXT,
  run_dir TEXT,
  error TEXT,
  created_at REAL NOT NULL,
  finished_at REAL,
  UNIQUE (study, model, epochs, lr, seed)
);
CREATE INDEX trials_claim ON trials(study, status, claim_order, id);
CREATE TABLE eval_points(
  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  epoch REAL NOT NULL,
  examples_seen INTEGER NOT NULL,
  flops REAL NOT NULL,
  holdout_loss REAL NOT NULL,
  top1_error REAL NOT NULL,
  recorded_at REAL NOT NULL,
  PRIMARY KEY (trial_id, step)
);
)sql";

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

std::string hint_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return "the file is not an SQLite database or is damaged; pass another database path or move this file away";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process held the database lock past the busy timeout; retry, or look for a stuck worker";
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return "check that the file and its directory exist and are writable";
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return "check free disk space and the file system";
    case SQLITE_CONSTRAINT:
      return "the row violates the schema (e.g. an eval point for a trial id that does not exist)";
    default:
      return "see docs/results-db.md";
  }
}

}  // namespace

// A prepared statement bound to its database; every SQLite error becomes a UserError naming file and operation.
class ResultsDb::Stmt {
 public:
  Stmt(const ResultsDb& db, const char* sql, const char* operation) : db_(db), op_(operation) {
    int rc = sqlite3_prepare_v2(db.db_, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) db.fail_sqlite(rc, operation);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Stmt& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Stmt& bind(int i, int v) { return check(sqlite3_bind_int64(stmt_, i, v)); }

  // Steps once: true if a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail_sqlite(rc, op_);
  }
  void run() {
    while (step()) {
    }
  }
  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  double f64(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string text(int c) const {
    const unsigned char* p = sqlite3_column_text(stmt_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, c)))
             : std::string();
  }
  std::optional<double> opt_f64(int c) const { return is_null(c) ? std::nullopt : std::optional<double>(f64(c)); }

 private:
  Stmt& check(int rc) {
    if (rc != SQLITE_OK) db_.fail_sqlite(rc, op_);
    return *this;
  }
  const ResultsDb& db_;
  const char* op_;
  sqlite3_stmt* stmt_ = nullptr;
};

void ResultsDb::fail_sqlite(int rc, const char* operation) const {
  std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string code = sqlite3_errstr(rc);
  if (code != msg) msg += " (" + code + ")";
  throw UserError("results database " + path_ + ": " + operation + " failed: " + msg + "; " + hint_for(rc));
}

ResultsDb::ResultsDb(const std::string& path, double busy_timeout_s) : path_(path), clock_(wall_clock) {
  require(!path.empty(), "results database path is empty; pass a file path such as runs/study.db");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  try {
    if (rc != SQLITE_OK) fail_sqlite(rc, "open");
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout_s * 1000.0));
    exec("PRAGMA journal_mode=WAL", "enable WAL journal");
    exec("PRAGMA synchronous=FULL", "set synchronous=FULL");
    exec("PRAGMA foreign_keys=ON", "enable foreign keys");
    init_schema();
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

ResultsDb::~ResultsDb() {
  if (db_) sqlite3_close_v2(db_);
}

void ResultsDb::exec(const char* sql, const char* operation) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) fail_sqlite(rc, operation);
}

double ResultsDb::now() const { return clock_(); }

void ResultsDb::set_clock(std::function<double()> clock) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  clock_ = clock ? std::move(clock) : std::function<double()>(wall_clock);
}

template <class F>
auto ResultsDb::write_txn(const char* operation, F&& body) -> decltype(body()) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  exec("BEGIN IMMEDIATE", operation);
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      exec("COMMIT", operation);
    } else {
      auto out = body();
      exec("COMMIT", operation);
      return out;
    }
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void ResultsDb::init_schema() {
  write_txn("create schema", [&] {
    Stmt has_meta(*this, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'", "read schema");
    has_meta.step();
    if (has_meta.i64(0) == 0) {
      Stmt any(*this, "SELECT count(*) FROM sqlite_master WHERE type='table'", "read schema");
      any.step();
      require(any.i64(0) == 0, "results database " + path_ +
                                   ": an SQLite database but not an nfscale results database (tables exist, no "
                                   "'meta' table); pass another database path");
      exec(kSchemaSql, "create schema");
      Stmt put(*this, "INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('created_at', ?)",
               "create schema");
      put.bind(1, std::to_string(kSchemaVersion)).bind(2, std::to_string(now())).run();
      return;
    }
    int version = schema_version();
    require(version <= kSchemaVersion, "results database " + path_ + ": schema_version " + std::to_string(version) +
                                           " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                                           "); use a newer nfscale");
    require(version == kSchemaVersion, "results database " + path_ + ": unknown schema_version " +
                                           std::to_string(version) + "; recreate the database");
  });
}

int ResultsDb::schema_version() const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(*this, "SELECT value FROM meta WHERE key='schema_version'", "read schema_version");
  require(s.step(), "results database " + path_ + ": meta table has no schema_version; recreate the database");
  std::string v = s.text(0);
  try {
    return std::stoi(v);
  } catch (const std::exception&) {
    throw UserError("results database " + path_ + ": schema_version '" + v + "' is not a number; recreate it");
  }
}

int64_t ResultsDb::add_trial(const TrialSpec& spec, bool* inserted) {
  require(!spec.study.empty(), "trial spec: study name is empty; give the study a name");
  require(!spec.model.empty(), "trial spec: model is empty; name a model such as F0");
  require(spec.epochs > 0.0, "trial spec: epochs must be > 0 (got " + std::to_string(spec.epochs) + ")");
  require(spec.lr > 0.0, "trial spec: lr must be > 0 (got " + std::to_string(spec.lr) + ")");
  require_json_object(spec.config_json, "trial spec config_json");
  return write_txn("add trial", [&] {
    Stmt ins(*this,
             "INSERT OR IGNORE INTO trials(study, model, epochs, lr, seed, config_json, claim_order, created_at) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             "add trial");
    ins.bind(1, spec.study).bind(2, spec.model).bind(3, canonical(spec.epochs)).bind(4, canonical(spec.lr));
    ins.bind(5, spec.seed).bind(6, spec.config_json).bind(7, spec.claim_order).bind(8, now()).run();
    bool added = sqlite3_changes(db_) > 0;
    if (inserted) *inserted = added;
    if (added) return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
    Stmt find(*this, "SELECT id FROM trials WHERE study=? AND model=? AND epochs=? AND lr=? AND seed=?", "add trial");
    find.bind(1, spec.study).bind(2, spec.model).bind(3, canonical(spec.epochs)).bind(4, canonical(spec.lr));
    find.bind(5, spec.seed);
    require(find.step(), "results database " + path_ + ": add trial: row vanished after INSERT OR IGNORE");
    return find.i64(0);
  });
}

std::optional<Trial> ResultsDb::claim_next(const std::string& study, const std::string& worker, double stale_after_s,
                                           int max_attempts) {
  require(!worker.empty(), "claim_next: worker id is empty; give each worker a unique id");
  require(stale_after_s > 0.0, "claim_next: stale_after_s must be > 0 (a few heartbeat intervals)");
  require(max_attempts >= 1, "claim_next: max_attempts must be >= 1");
  return write_txn("claim trial", [&]() -> std::optional<Trial> {
    const double t = now();
    const double cutoff = t - stale_after_s;
    Stmt give_up(*this,
                 "UPDATE trials SET status='failed', finished_at=?, error='worker ' || ifnull(worker_id, '?') || "
                 "' stopped heartbeating; gave up after ' || attempts || ' attempts (use --retry-failed to try again)' "
                 "WHERE study=? AND status='running' AND heartbeat_at < ? AND attempts >= ?",
                 "claim trial");
    give_up.bind(1, t).bind(2, study).bind(3, cutoff).bind(4, max_attempts).run();
    Stmt pick(*this,
              "SELECT id FROM trials WHERE study=? AND (status='pending' OR (status='running' AND heartbeat_at < ?)) "
              "ORDER BY claim_order, id LIMIT 1",
              "claim trial");
    pick.bind(1, study).bind(2, cutoff);
    if (!pick.step()) return std::nullopt;
    const int64_t id = pick.i64(0);
    Stmt mark(*this,
              "UPDATE trials SET status='running', worker_id=?, claimed_at=?, heartbeat_at=?, attempts=attempts+1 "
              "WHERE id=?",
              "claim trial");
    mark.bind(1, worker).bind(2, t).bind(3, t).bind(4, id).run();
    return trial(id);
  });
}

bool ResultsDb::heartbeat(int64_t id, const std::string& worker) {
  return write_txn("heartbeat", [&] {
    Stmt s(*this, "UPDATE trials SET heartbeat_at=? WHERE id=? AND worker_id=? AND status='running'", "heartbeat");
    s.bind(1, now()).bind(2, id).bind(3, worker).run();
    return sqlite3_changes(db_) > 0;
  });
}

namespace {
std::string ownership_problem(const std::optional<Trial>& t, int64_t id, const std::string& worker) {
  if (!t) return "trial " + std::to_string(id) + " does not exist";
  if (t->status != TrialStatus::Running)
    return "trial " + std::to_string(id) + " is " + to_string(t->status) + ", not running";
  return "trial " + std::to_string(id) + " is owned by worker '" + t->worker_id + "', not '" + worker +
         "' (its claim went stale and was taken over)";
}
}  // namespace

void ResultsDb::owned_update(int64_t id, const std::string& worker, const char* operation,
                             const std::string& set_sql, const std::function<int(Stmt&)>& bind) {
  write_txn(operation, [&] {
    const std::string sql = "UPDATE trials SET " + set_sql + " WHERE id=? AND worker_id=? AND status='running'";
    Stmt s(*this, sql.c_str(), operation);
    const int n = bind(s);
    s.bind(n + 1, id).bind(n + 2, worker).run();
    if (sqlite3_changes(db_) == 0)
      throw UserError("results database " + path_ + ": " + operation + " refused: " +
                      ownership_problem(trial(id), id, worker));
  });
}

void ResultsDb::set_run_dir(int64_t id, const std::string& worker, const std::string& run_dir) {
  owned_update(id, worker, "set run dir", "run_dir=?", [&](Stmt& s) { return s.bind(1, run_dir), 1; });
}

void ResultsDb::set_checkpoint(int64_t id, const std::string& worker, const std::string& checkpoint_path) {
  owned_update(id, worker, "set checkpoint", "checkpoint_path=?",
               [&](Stmt& s) { return s.bind(1, checkpoint_path), 1; });
}

void ResultsDb::finish(int64_t id, const std::string& worker, const TrialResult& r) {
  require_json_object(r.test_metrics_json, "trial " + std::to_string(id) + " result test_metrics_json");
  const double t = now();
  owned_update(id, worker, "finish trial",
               "status='done', flops=?, seconds=?, params=?, macs_per_image=?, holdout_loss=?, holdout_top1_error=?, "
               "test_metrics_json=?, checkpoint_path=coalesce(nullif(?, ''), checkpoint_path), "
               "run_dir=coalesce(nullif(?, ''), run_dir), error=NULL, finished_at=?, heartbeat_at=?",
               [&](Stmt& s) {
                 s.bind(1, r.flops).bind(2, r.seconds).bind(3, r.params).bind(4, r.macs_per_image);
                 s.bind(5, r.holdout_loss).bind(6, r.holdout_top1_error).bind(7, r.test_metrics_json);
                 s.bind(8, r.checkpoint_path).bind(9, r.run_dir).bind(10, t).bind(11, t);
                 return 11;
               });
}

void ResultsDb::fail(int64_t id, const std::string& worker, const std::string& error) {
  const double t = now();
  owned_update(id, worker, "fail trial", "status='failed', error=?, finished_at=?",
               [&](Stmt& s) { return s.bind(1, error).bind(2, t), 2; });
}

void ResultsDb::release(int64_t id, const std::string& worker) {
  owned_update(id, worker, "release trial", "status='pending', worker_id=NULL, claimed_at=NULL, heartbeat_at=NULL",
               [](Stmt&) { return 0; });
}

int64_t ResultsDb::reset_failed(const std::string& study) {
  return write_txn("reset failed trials", [&] {
    Stmt s(*this,
           "UPDATE trials SET status='pending', worker_id=NULL, claimed_at=NULL, heartbeat_at=NULL, "
           "finished_at=NULL WHERE study=? AND status='failed'",
           "reset failed trials");
    s.bind(1, study).run();
    return static_cast<int64_t>(sqlite3_changes(db_));
  });
}

void ResultsDb::add_eval_point(int64_t id, const EvalPoint& p) {
  write_txn("add eval point", [&] {
    Stmt s(*this,
           "INSERT OR REPLACE INTO eval_points(trial_id, step, epoch, examples_seen, flops, holdout_loss, "
           "top1_error, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
           "add eval point");
    s.bind(1, id).bind(2, p.step).bind(3, p.epoch).bind(4, p.examples_seen).bind(5, p.flops);
    s.bind(6, p.holdout_loss).bind(7, p.top1_error).bind(8, now()).run();
  });
}

Trial ResultsDb::row_to_trial(const Stmt& s) {
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

std::vector<Trial> ResultsDb::query_trials(const char* where_sql, const std::function<void(Stmt&)>& bind,
                                           const char* operation) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  std::string sql = std::string("SELECT ") + kTrialColumns + " FROM trials " + where_sql;
  Stmt s(*this, sql.c_str(), operation);
  bind(s);
  std::vector<Trial> out;
  while (s.step()) out.push_back(row_to_trial(s));
  return out;
}

std::vector<Trial> ResultsDb::trials(const std::string& study) const {
  return query_trials("WHERE study=? ORDER BY claim_order, id", [&](Stmt& s) { s.bind(1, study); }, "list trials");
}

std::optional<Trial> ResultsDb::trial(int64_t id) const {
  auto v = query_trials("WHERE id=?", [&](Stmt& s) { s.bind(1, id); }, "read trial");
  if (v.empty()) return std::nullopt;
  return v.front();
}

std::vector<EvalPoint> ResultsDb::eval_points(int64_t id) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(*this,
         "SELECT step, epoch, examples_seen, flops, holdout_loss, top1_error FROM eval_points WHERE trial_id=? "
         "ORDER BY step",
         "list eval points");
  s.bind(1, id);
  std::vector<EvalPoint> out;
  while (s.step()) out.push_back({s.i64(0), s.f64(1), s.i64(2), s.f64(3), s.f64(4), s.f64(5)});
  return out;
}

StudyCounts ResultsDb::counts(const std::string& study) const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(*this, "SELECT status, count(*) FROM trials WHERE study=? GROUP BY status", "count trials");
  s.bind(1, study);
  StudyCounts c;
  while (s.step()) {
    switch (parse_trial_status(s.text(0), "results database " + path_)) {
      case TrialStatus::Pending: c.pending = s.i64(1); break;
      case TrialStatus::Running: c.running = s.i64(1); break;
      case TrialStatus::Done: c.done = s.i64(1); break;
      case TrialStatus::Failed: c.failed = s.i64(1); break;
    }
  }
  return c;
}

std::vector<std::string> ResultsDb::studies() const {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Stmt s(*this, "SELECT DISTINCT study FROM trials ORDER BY study", "list studies");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

}  // namespace nfscale::scaling
