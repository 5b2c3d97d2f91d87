// test_results_store.cpp - the results store on both backends (one typed suite: SQLite and PostgreSQL): schema,
// idempotent adds, claim order, concurrent claimers (threads and processes), stale-claim recovery, ownership,
// persistence, leases, a lost server connection mid-trial, and clear errors on bad files, wrong servers and
// unreachable hosts.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "nfscale/store/postgres_backend.h"
#include "nfscale/store/results_store.h"
#include "nfscale/store/trial_lease.h"
#include "nfscale/util/error.h"
#include "store_test_util.h"

namespace fs = std::filesystem;
using namespace nfscale::store;
using nfscale::UserError;
using nfscale::store::test_util::ScratchStore;

namespace {

struct SqliteKind {
  static constexpr StoreKind kind = StoreKind::Sqlite;
};
struct PostgresKind {
  static constexpr StoreKind kind = StoreKind::Postgres;
};

// The same tests over both backends; PostgreSQL cases skip without a test cluster (fail under CI=true).
template <class Kind>
class ResultsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Kind::kind == StoreKind::Postgres) NFSCALE_REQUIRE_TEST_PG();
    scratch_ = std::make_unique<ScratchStore>(Kind::kind, "rs");
    path_ = scratch_->location();
    dir_ = scratch_->dir();
  }
  void TearDown() override { scratch_.reset(); }
  std::unique_ptr<ResultsStore> open() const { return open_results_store(path_); }

  static TrialSpec spec(const std::string& model, double epochs, double lr, int64_t seed = 0, int64_t order = 0) {
    TrialSpec s;
    s.study = "s1";
    s.model = model;
    s.epochs = epochs;
    s.lr = lr;
    s.seed = seed;
    s.claim_order = order;
    s.config_json = R"({"batch": 64})";
    return s;
  }
  static TrialResult result(double loss) {
    TrialResult r;
    r.flops = 1e12;
    r.seconds = 12.5;
    r.params = 71500000;
    r.macs_per_image = 9.48e9;
    r.holdout_loss = loss;
    r.holdout_top1_error = 0.25;
    r.test_metrics_json = R"({"top5_error": 0.05})";
    r.checkpoint_path = "runs/x/ckpt.bin";
    return r;
  }
  template <class F>
  static std::string error_of(F&& f) {
    try {
      f();
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  }

  std::unique_ptr<ScratchStore> scratch_;
  fs::path dir_;
  std::string path_;  // the store location: an SQLite path or a postgresql:// URI
};

using Backends = ::testing::Types<SqliteKind, PostgresKind>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return T::kind == StoreKind::Sqlite ? "SQLite" : "PostgreSQL";
  }
};
TYPED_TEST_SUITE(ResultsStoreTest, Backends, BackendNames);

TYPED_TEST(ResultsStoreTest, CreatesVersionedSchema) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  EXPECT_EQ(db.schema_version(), ResultsStore::kSchemaVersion);
  auto names = db.backend().table_names();
  std::set<std::string> tables(names.begin(), names.end());
  EXPECT_TRUE(tables.count("meta"));
  EXPECT_TRUE(tables.count("trials"));
  EXPECT_TRUE(tables.count("eval_points"));
  EXPECT_EQ(db.location(), this->path_);  // no password in this location: shown as given
}

TEST(SqliteStore, UsesWalJournal) {
  ScratchStore scratch(StoreKind::Sqlite, "wal");
  open_results_store(scratch.location());
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(scratch.location().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), "wal");
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TYPED_TEST(ResultsStoreTest, AddIsIdempotentAndCanonicalisesNumbers) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  bool inserted = false;
  int64_t a = db.add_trial(TestFixture::spec("F0", 1.0, 0.3), &inserted);
  EXPECT_TRUE(inserted);
  int64_t b = db.add_trial(TestFixture::spec("F0", 1.0, 0.1 * 3), &inserted);  // 0.30000000000000004
  EXPECT_FALSE(inserted);
  EXPECT_EQ(a, b);
  int64_t c = db.add_trial(TestFixture::spec("F0", 1.0, 0.3, /*seed=*/1), &inserted);
  EXPECT_TRUE(inserted);
  EXPECT_NE(a, c);
  EXPECT_EQ(db.trials("s1").size(), 2u);
  EXPECT_EQ(db.counts("s1").pending, 2);
  EXPECT_EQ(db.counts("other").total(), 0);
}

TYPED_TEST(ResultsStoreTest, RejectsBadSpecs) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  auto bad = TestFixture::spec("F0", 1.0, 0.4);
  bad.config_json = "{not json";
  EXPECT_NE(TestFixture::error_of([&] { db.add_trial(bad); }).find("config_json"), std::string::npos);
  bad.config_json = "[1,2]";
  EXPECT_NE(TestFixture::error_of([&] { db.add_trial(bad); }).find("JSON object"), std::string::npos);
  EXPECT_NE(TestFixture::error_of([&] { db.add_trial(TestFixture::spec("F0", 0.0, 0.4)); }).find("epochs"), std::string::npos);
  EXPECT_NE(TestFixture::error_of([&] { db.add_trial(TestFixture::spec("", 1.0, 0.4)); }).find("model"), std::string::npos);
  EXPECT_EQ(db.trials("s1").size(), 0u);
}

TYPED_TEST(ResultsStoreTest, ClaimsInOrderThenIdAndSeesDynamicallyAddedTrials) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  int64_t late = db.add_trial(TestFixture::spec("F0", 1, 0.8, 0, /*order=*/5));
  int64_t first = db.add_trial(TestFixture::spec("F0", 1, 0.4, 0, /*order=*/1));
  int64_t second = db.add_trial(TestFixture::spec("F0", 1, 1.6, 0, /*order=*/1));
  auto t1 = db.claim_next("s1", "w", 60);
  ASSERT_TRUE(t1);
  EXPECT_EQ(t1->id, first);
  EXPECT_EQ(t1->status, TrialStatus::Running);
  EXPECT_EQ(t1->worker_id, "w");
  EXPECT_EQ(t1->attempts, 1);
  EXPECT_EQ(t1->spec.config_json, R"({"batch": 64})");
  EXPECT_EQ(db.claim_next("s1", "w", 60)->id, second);
  // The adaptive LR search adds a trial after seeing results; it jumps the queue with a lower order.
  int64_t urgent = db.add_trial(TestFixture::spec("F0", 1, 3.2, 0, /*order=*/0));
  EXPECT_EQ(db.claim_next("s1", "w", 60)->id, urgent);
  EXPECT_EQ(db.claim_next("s1", "w", 60)->id, late);
  EXPECT_FALSE(db.claim_next("s1", "w", 60));
  EXPECT_FALSE(db.claim_next("other-study", "w", 60));
  EXPECT_EQ(db.counts("s1").running, 4);
}

TYPED_TEST(ResultsStoreTest, FinishStoresResultsAndOnlyOwnerMayFinish) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  int64_t id = db.add_trial(TestFixture::spec("F1", 2, 0.8));
  auto t = db.claim_next("s1", "alice", 60);
  ASSERT_TRUE(t);
  db.set_run_dir(id, "alice", "runs/f1_e2");
  std::string err = TestFixture::error_of([&] { db.finish(id, "bob", TestFixture::result(1.0)); });
  EXPECT_NE(err.find("owned by worker 'alice'"), std::string::npos) << err;
  EXPECT_NE(err.find(this->path_), std::string::npos) << err;
  EXPECT_NE(TestFixture::error_of([&] { db.set_checkpoint(id, "bob", "x"); }), "");
  EXPECT_FALSE(db.heartbeat(id, "bob"));
  EXPECT_TRUE(db.heartbeat(id, "alice"));
  db.finish(id, "alice", TestFixture::result(2.5));
  auto done = db.trial(id);
  ASSERT_TRUE(done && done->result);
  EXPECT_EQ(done->status, TrialStatus::Done);
  EXPECT_DOUBLE_EQ(done->result->holdout_loss, 2.5);
  EXPECT_EQ(done->result->params, 71500000);
  EXPECT_EQ(done->result->test_metrics_json, R"({"top5_error": 0.05})");
  EXPECT_EQ(done->checkpoint_path, "runs/x/ckpt.bin");
  EXPECT_EQ(done->run_dir, "runs/f1_e2");  // kept: the result did not name one
  EXPECT_TRUE(done->finished_at.has_value());
  // A finished trial cannot be finished, failed or heartbeated again.
  EXPECT_NE(TestFixture::error_of([&] { db.finish(id, "alice", TestFixture::result(1.0)); }).find("is done"), std::string::npos);
  EXPECT_NE(TestFixture::error_of([&] { db.fail(id, "alice", "x"); }), "");
  EXPECT_FALSE(db.heartbeat(id, "alice"));
  EXPECT_NE(TestFixture::error_of([&] { db.finish(999, "alice", TestFixture::result(1.0)); }).find("does not exist"), std::string::npos);
}

TYPED_TEST(ResultsStoreTest, FailAndResetFailed) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  int64_t id = db.add_trial(TestFixture::spec("F0", 1, 0.4));
  db.add_trial(TestFixture::spec("F0", 1, 0.8));
  ASSERT_EQ(db.claim_next("s1", "w", 60)->id, id);
  db.fail(id, "w", "loss diverged (NaN)");
  EXPECT_EQ(db.trial(id)->status, TrialStatus::Failed);
  EXPECT_EQ(db.trial(id)->error, "loss diverged (NaN)");
  EXPECT_EQ(db.counts("s1").failed, 1);
  // Failed trials are not claimed again until reset.
  EXPECT_NE(db.claim_next("s1", "w", 60)->id, id);
  EXPECT_FALSE(db.claim_next("s1", "w", 60));
  EXPECT_EQ(db.reset_failed("s1"), 1);
  auto again = db.claim_next("s1", "w2", 60);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(again->attempts, 2);
  EXPECT_EQ(again->error, "loss diverged (NaN)");  // last failure kept for the operator until done
}

TYPED_TEST(ResultsStoreTest, StaleClaimIsRecoveredAndOldOwnerIsLockedOut) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  double t = 1000.0;
  db.set_clock([&] { return t; });
  int64_t id = db.add_trial(TestFixture::spec("F3", 4, 0.4));
  ASSERT_EQ(db.claim_next("s1", "dead", 60)->id, id);
  t = 1030;
  EXPECT_FALSE(db.claim_next("s1", "w2", 60));  // heartbeat 30 s old: still alive
  EXPECT_TRUE(db.heartbeat(id, "dead"));          // heartbeat at 1030
  t = 1080;
  EXPECT_FALSE(db.claim_next("s1", "w2", 60));  // 50 s since the last beat
  t = 1091;
  auto rec = db.claim_next("s1", "w2", 60);  // 61 s: stale, recovered
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->id, id);
  EXPECT_EQ(rec->worker_id, "w2");
  EXPECT_EQ(rec->attempts, 2);
  EXPECT_FALSE(db.heartbeat(id, "dead"));
  EXPECT_NE(TestFixture::error_of([&] { db.finish(id, "dead", TestFixture::result(1)); }).find("taken over"), std::string::npos);
  // Third claim uses the last attempt; when that worker dies too, the trial is failed rather than retried forever.
  t = 1200;
  ASSERT_TRUE(db.claim_next("s1", "w3", 60, /*max_attempts=*/3));
  t = 1300;
  EXPECT_FALSE(db.claim_next("s1", "w4", 60, 3));
  auto gave_up = db.trial(id);
  EXPECT_EQ(gave_up->status, TrialStatus::Failed);
  EXPECT_NE(gave_up->error.find("w3"), std::string::npos) << gave_up->error;
  EXPECT_NE(gave_up->error.find("3 attempts"), std::string::npos) << gave_up->error;
}

TYPED_TEST(ResultsStoreTest, EvalPointsAreIdempotentPerStep) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  int64_t id = db.add_trial(TestFixture::spec("F0", 1, 0.4));
  db.add_eval_point(id, {200, 0.5, 12800, 1e10, 3.0, 0.6});
  db.add_eval_point(id, {100, 0.25, 6400, 5e9, 4.0, 0.8});
  db.add_eval_point(id, {200, 0.5, 12800, 1e10, 2.9, 0.58});  // resumed run re-logs step 200
  auto pts = db.eval_points(id);
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].step, 100);
  EXPECT_EQ(pts[1].step, 200);
  EXPECT_DOUBLE_EQ(pts[1].holdout_loss, 2.9);
  EXPECT_EQ(pts[1].examples_seen, 12800);
  EXPECT_NE(TestFixture::error_of([&] { db.add_eval_point(12345, {1, 0, 0, 0, 0, 0}); }).find("add eval point"),
            std::string::npos);
}

TYPED_TEST(ResultsStoreTest, ReopeningKeepsEverything) {
  int64_t id;
  {
    auto opened = this->open();
    ResultsStore& db = *opened;
    id = db.add_trial(TestFixture::spec("F0", 1, 0.4));
    db.add_trial(TestFixture::spec("F1", 1, 0.4));
    db.claim_next("s1", "w", 60);
    db.add_eval_point(id, {10, 0.1, 640, 1e9, 5.0, 0.9});
    db.finish(id, "w", TestFixture::result(1.25));
  }
  auto opened = this->open();
  ResultsStore& db = *opened;
  auto all = db.trials("s1");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].status, TrialStatus::Done);
  EXPECT_DOUBLE_EQ(all[0].result->holdout_loss, 1.25);
  EXPECT_EQ(all[1].status, TrialStatus::Pending);
  EXPECT_EQ(db.eval_points(id).size(), 1u);
  EXPECT_EQ(db.studies(), std::vector<std::string>{"s1"});
  EXPECT_EQ(db.add_trial(TestFixture::spec("F0", 1, 0.4)), id);
}

TYPED_TEST(ResultsStoreTest, ForeignOrNewerSchemasAndMissingStoresAreRefused) {
  std::string err = TestFixture::error_of([&] { open_results_store(this->path_, OpenMode::MustExist); });
  EXPECT_NE(err.find(this->path_), std::string::npos) << err;
  EXPECT_NE(err.find("first"), std::string::npos) << err;  // "... run `nfscale sweep` ... first"
  this->scratch_->raw_sql("CREATE TABLE t(x INTEGER)");
  err = TestFixture::error_of([&] { this->open(); });
  EXPECT_NE(err.find("not an nfscale results database"), std::string::npos) << err;
  this->scratch_->raw_sql("DROP TABLE t");
  this->open();
  this->scratch_->raw_sql("UPDATE meta SET value='99' WHERE key='schema_version'");
  err = TestFixture::error_of([&] { this->open(); });
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
  EXPECT_NE(err.find(this->path_), std::string::npos) << err;
}

TEST(SqliteStore, NonDatabaseFileGivesClearError) {
  ScratchStore scratch(StoreKind::Sqlite, "notadb");
  {
    std::ofstream f(scratch.location());
    f << "this is a text file, not a database; " << std::string(4000, 'x');
  }
  std::string err;
  try {
    open_results_store(scratch.location());
  } catch (const UserError& e) {
    err = e.what();
  }
  EXPECT_NE(err.find(scratch.location()), std::string::npos) << err;
  EXPECT_NE(err.find("not an SQLite database"), std::string::npos) << err;
}

// Simulates a worker: claim until nothing is left, finish each; returns the ids it claimed.
std::vector<int64_t> work(const std::string& path, const std::string& worker) {
  auto db = open_results_store(path);
  std::vector<int64_t> ids;
  while (auto t = db->claim_next("s1", worker, 600)) {
    ids.push_back(t->id);
    db->add_eval_point(t->id, {1, 0.1, 10, 1.0, 1.0, 0.5});
    db->finish(t->id, worker, TrialResult{});
  }
  return ids;
}

void expect_each_done_once(const std::string& path, const std::vector<int64_t>& claimed, size_t n) {
  std::vector<int64_t> sorted = claimed;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "a trial was claimed twice";
  EXPECT_EQ(sorted.size(), n);
  auto db = open_results_store(path);
  for (const auto& t : db->trials("s1")) {
    EXPECT_EQ(t.status, TrialStatus::Done) << t.id;
    EXPECT_EQ(t.attempts, 1) << t.id;
  }
  EXPECT_EQ(db->counts("s1").done, static_cast<int64_t>(n));
}

TYPED_TEST(ResultsStoreTest, ConcurrentThreadsWithSeparateConnectionsClaimEachTrialOnce) {
  const int n = 40;
  {
    auto opened = this->open();
    ResultsStore& db = *opened;
    for (int i = 0; i < n; ++i) db.add_trial(TestFixture::spec("F0", 1, 0.1 * (i + 1)));
  }
  std::vector<std::vector<int64_t>> per(4);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) threads.emplace_back([&, w] { per[w] = work(this->path_, "t" + std::to_string(w)); });
  for (auto& th : threads) th.join();
  std::vector<int64_t> all;
  for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
  expect_each_done_once(this->path_, all, n);
}

TYPED_TEST(ResultsStoreTest, ConcurrentProcessesClaimEachTrialOnce) {
  const int n = 30;
  {
    auto opened = this->open();
    ResultsStore& db = *opened;
    for (int i = 0; i < n; ++i) db.add_trial(TestFixture::spec("F1", 2, 0.05 * (i + 1)));
  }
  std::vector<pid_t> kids;
  for (int w = 0; w < 3; ++w) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        auto ids = work(this->path_, "p" + std::to_string(w));
        std::ofstream out((this->dir_ / ("claimed" + std::to_string(w))).string());
        for (auto id : ids) out << id << "\n";
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  std::vector<int64_t> all;
  for (int w = 0; w < 3; ++w) {
    std::ifstream in((this->dir_ / ("claimed" + std::to_string(w))).string());
    int64_t id;
    while (in >> id) all.push_back(id);
  }
  expect_each_done_once(this->path_, all, n);
}

TYPED_TEST(ResultsStoreTest, LeaseHeartbeatsAndNoticesTakeover) {
  auto opened = this->open();
  ResultsStore& db = *opened;
  int64_t id = db.add_trial(TestFixture::spec("F0", 1, 0.4));
  auto t = db.claim_next("s1", "w1", 60);
  ASSERT_TRUE(t);
  const double claimed = *t->heartbeat_at;
  {
    TrialLease lease(this->path_, id, "w1", 0.02);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (lease.beats() < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_GE(lease.beats(), 3);
    EXPECT_FALSE(lease.lost());
    EXPECT_GT(*db.trial(id)->heartbeat_at, claimed);
    // Another worker takes the trial over (as if w1's beats had stopped): the lease notices.
    db.set_clock([] { return 4.0e9; });  // far future: every heartbeat is stale
    ASSERT_EQ(db.claim_next("s1", "w2", 60)->worker_id, "w2");
    db.set_clock(nullptr);
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!lease.lost() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(lease.lost());
  }
  EXPECT_EQ(db.trial(id)->worker_id, "w2");
}

// ---- PostgreSQL only: lost connections, connection errors, credentials ----

TrialSpec simple_spec(double lr) {
  TrialSpec s;
  s.study = "s1";
  s.model = "F0";
  s.epochs = 1;
  s.lr = lr;
  return s;
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// Terminates the server backend of `db`'s connection (as an administrator or a server restart would) and waits
// until it is gone.
void terminate_backend(ResultsStore& db) {
  const int pid = dynamic_cast<PostgresBackend&>(db.backend()).backend_pid();
  ASSERT_GT(pid, 0);
  test_util::pg_admin("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  for (int i = 0; i < 500; ++i) {
    if (test_util::pg_admin("SELECT 1 FROM pg_stat_activity WHERE pid=" + std::to_string(pid)).empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "backend " << pid << " did not go away";
}

TEST(PostgresStore, LostConnectionMidTrialIsRetriedNeverLostOrDoneTwice) {
  NFSCALE_REQUIRE_TEST_PG();
  ScratchStore scratch(StoreKind::Postgres, "lost");
  auto db = open_results_store(scratch.location());
  const int64_t id = db->add_trial(simple_spec(0.4));
  db->add_trial(simple_spec(0.8));
  terminate_backend(*db);
  auto t = db->claim_next("s1", "w1", 60);  // reconnects and claims
  ASSERT_TRUE(t);
  ASSERT_EQ(t->id, id);
  const int first_pid = dynamic_cast<PostgresBackend&>(db->backend()).backend_pid();
  terminate_backend(*db);
  db->add_eval_point(id, {10, 0.5, 100, 1e9, 2.0, 0.5});
  EXPECT_NE(dynamic_cast<PostgresBackend&>(db->backend()).backend_pid(), first_pid) << "should have reconnected";
  terminate_backend(*db);
  db->set_checkpoint(id, "w1", "runs/x/ckpt.bin");
  terminate_backend(*db);
  EXPECT_TRUE(db->heartbeat(id, "w1"));
  terminate_backend(*db);
  TrialResult r;
  r.holdout_loss = 1.5;
  db->finish(id, "w1", r);
  auto other = open_results_store(scratch.location());
  auto done = other->trial(id);
  ASSERT_TRUE(done && done->result);
  EXPECT_EQ(done->status, TrialStatus::Done);
  EXPECT_EQ(done->attempts, 1) << "claimed once, finished once";
  EXPECT_EQ(done->worker_id, "w1");
  EXPECT_EQ(done->checkpoint_path, "runs/x/ckpt.bin");
  EXPECT_EQ(other->eval_points(id).size(), 1u);
  // The other trial is untouched and claimable once; the finished one is never handed out again.
  auto next = other->claim_next("s1", "w2", 60);
  ASSERT_TRUE(next);
  EXPECT_NE(next->id, id);
  EXPECT_FALSE(other->claim_next("s1", "w3", 60));
  EXPECT_NE(error_text([&] { db->finish(id, "w1", r); }).find("is done"), std::string::npos);
}

TEST(PostgresStore, GivesUpOnAnUnreachableServerWithAClearError) {
  NFSCALE_REQUIRE_TEST_PG();
  ScratchStore scratch(StoreKind::Postgres, "gone");
  auto db = open_results_store(scratch.location());
  db->set_reconnect_window(0.5);
  db->add_trial(simple_spec(0.4));
  // The database disappears for good (as a server that stays down): every reconnect fails.
  test_util::pg_admin("DROP DATABASE " + scratch.database() + " WITH (FORCE)");
  const std::string err = error_text([&] { db->counts("s1"); });
  EXPECT_NE(err.find("gave up after reconnecting"), std::string::npos) << err;
  EXPECT_NE(err.find("count trials"), std::string::npos) << err;
  test_util::pg_admin("CREATE DATABASE " + scratch.database());  // for the scratch store's clean-up
}

// A loopback TCP port that answers like an HTTP server, not PostgreSQL.
class FakeServer {
 public:
  FakeServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (int i = 0; i < 4; ++i) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[256];
        (void)!::read(c, buf, sizeof buf);
        const char reply[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
        (void)!::write(c, reply, sizeof reply - 1);
        ::close(c);
      }
    });
  }
  ~FakeServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1, port_ = 0;
  std::thread thread_;
};

TEST(PostgresStore, ConnectionErrorsNameTheProblemAndTheFixWithoutThePassword) {
  NFSCALE_REQUIRE_TEST_PG();
  const std::string pw = "Pw-Never-Shown-81723";
  // Unreachable: no server at this socket folder.
  std::string err = error_text([&] { open_results_store("postgresql://someone:" + pw + "@/db?host=/nonexistent-nfscale"); });
  EXPECT_NE(err.find("cannot connect"), std::string::npos) << err;
  EXPECT_NE(err.find("unreachable"), std::string::npos) << err;
  EXPECT_NE(err.find("postgresql://someone:***@/db?host=/nonexistent-nfscale"), std::string::npos) << err;
  EXPECT_EQ(err.find(pw), std::string::npos) << err;
  // Wrong server: something else listens on the loopback port.
  {
    FakeServer fake;
    err = error_text([&] {
      open_results_store("postgresql://someone:" + pw + "@127.0.0.1:" + std::to_string(fake.port()) + "/db?sslmode=disable");
    });
    EXPECT_NE(err.find("not a PostgreSQL server"), std::string::npos) << err;
    EXPECT_EQ(err.find(pw), std::string::npos) << err;
  }
  // Wrong password for a real role: the hint points at ~/.pgpass / PGPASSFILE.
  test_util::pg_admin("DROP ROLE IF EXISTS nfscale_pw_probe");
  test_util::pg_admin("CREATE ROLE nfscale_pw_probe LOGIN PASSWORD 'right-one'");
  err = error_text([&] {
    open_results_store(test_util::pg_uri_with(test_util::test_pg_admin_uri(), "postgres", "nfscale_pw_probe:" + pw));
  });
  EXPECT_NE(err.find("pgpass"), std::string::npos) << err;
  EXPECT_EQ(err.find(pw), std::string::npos) << err;
  test_util::pg_admin("DROP ROLE nfscale_pw_probe");
  // No such database.
  err = error_text([&] {
    open_results_store(test_util::pg_uri_with(test_util::test_pg_admin_uri(), "nfscale_no_such_database"));
  });
  EXPECT_NE(err.find("createdb"), std::string::npos) << err;
}

TEST(PostgresStore, PasswordInTheUriIsUsedButNeverShown) {
  NFSCALE_REQUIRE_TEST_PG();
  const std::string role = "nfscale_pw_" + std::to_string(::getpid());
  const std::string pw = "S3cret%2Fpw-" + std::to_string(::getpid());  // percent-encoded '/': "S3cret/pw-..."
  test_util::pg_admin("DROP ROLE IF EXISTS " + role);
  test_util::pg_admin("CREATE ROLE " + role + " LOGIN PASSWORD 'S3cret/pw-" + std::to_string(::getpid()) + "'");
  {
    ScratchStore scratch(StoreKind::Postgres, "pw", role);
    const std::string no_pw = test_util::pg_uri_with(scratch.location(), scratch.database(), role);
    EXPECT_NE(error_text([&] { open_results_store(no_pw); }).find("pgpass"), std::string::npos)
        << "the test cluster must require passwords for non-superusers (scripts/pg-test-cluster.sh)";
    const std::string uri = test_util::pg_uri_with(scratch.location(), scratch.database(), role + ":" + pw);
    auto db = open_results_store(uri);
    EXPECT_EQ(db->location().find("S3cret"), std::string::npos) << db->location();
    EXPECT_NE(db->location().find(role + ":***@"), std::string::npos) << db->location();
    const int64_t id = db->add_trial(simple_spec(0.4));
    ASSERT_TRUE(db->claim_next("s1", "w1", 60));
    const std::string err = error_text([&] { db->finish(id, "intruder", TrialResult{}); });
    EXPECT_NE(err.find("owned by worker"), std::string::npos) << err;
    EXPECT_EQ(err.find("S3cret"), std::string::npos) << err;
    // A lease with the same URI heartbeats through its own connection.
    TrialLease lease(uri, id, "w1", 0.02);
    for (int i = 0; i < 500 && lease.beats() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GE(lease.beats(), 1) << lease.last_error();
  }
  test_util::pg_admin("DROP ROLE " + role);
}

TEST(StoreLocation, RedactsPasswordsAndClassifies) {
  EXPECT_EQ(store_kind("studies/x/results.sqlite"), StoreKind::Sqlite);
  EXPECT_EQ(store_kind("postgresql://h/db"), StoreKind::Postgres);
  EXPECT_EQ(store_kind("postgres://h/db"), StoreKind::Postgres);
  EXPECT_EQ(redact_location("postgresql://u:p%40ss@h:5432/db?sslmode=require&password=two"),
            "postgresql://u:***@h:5432/db?sslmode=require&password=***");
  EXPECT_EQ(redact_location("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(redact_location("postgresql:///db?host=/tmp/x"), "postgresql:///db?host=/tmp/x");
  EXPECT_EQ(redact_location("runs/a:b@c.sqlite"), "runs/a:b@c.sqlite");  // a path is not a URI
  auto secrets = location_secrets("postgresql://u:p%40ss@h/db?password=two");
  EXPECT_EQ(secrets, (std::vector<std::string>{"p%40ss", "p@ss", "two"}));
  EXPECT_EQ(scrub_secrets("failed for p@ss and p@ss", secrets), "failed for *** and ***");
}

}  // namespace
