// test_results_db.cpp - the results database: schema, idempotent adds, claim order, concurrent claimers
// (threads and processes), stale-claim recovery, ownership, persistence and clear errors on bad files.
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

#include "nfscale/scaling/results_db.h"
#include "nfscale/scaling/trial_lease.h"
#include "nfscale/util/error.h"

namespace fs = std::filesystem;
using namespace nfscale::scaling;
using nfscale::UserError;

namespace {

class ResultsDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nfscale_results_db_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "study.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

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

  fs::path dir_;
  std::string path_;
};

TEST_F(ResultsDbTest, CreatesVersionedSchema) {
  ResultsDb db(path_);
  EXPECT_EQ(db.schema_version(), ResultsDb::kSchemaVersion);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  std::set<std::string> tables;
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT name FROM sqlite_master WHERE type='table'", -1, &st, nullptr),
            SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) tables.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), "wal");
  sqlite3_finalize(st);
  sqlite3_close(raw);
  EXPECT_TRUE(tables.count("meta"));
  EXPECT_TRUE(tables.count("trials"));
  EXPECT_TRUE(tables.count("eval_points"));
}

TEST_F(ResultsDbTest, AddIsIdempotentAndCanonicalisesNumbers) {
  ResultsDb db(path_);
  bool inserted = false;
  int64_t a = db.add_trial(spec("F0", 1.0, 0.3), &inserted);
  EXPECT_TRUE(inserted);
  int64_t b = db.add_trial(spec("F0", 1.0, 0.1 * 3), &inserted);  // 0.30000000000000004
  EXPECT_FALSE(inserted);
  EXPECT_EQ(a, b);
  int64_t c = db.add_trial(spec("F0", 1.0, 0.3, /*seed=*/1), &inserted);
  EXPECT_TRUE(inserted);
  EXPECT_NE(a, c);
  EXPECT_EQ(db.trials("s1").size(), 2u);
  EXPECT_EQ(db.counts("s1").pending, 2);
  EXPECT_EQ(db.counts("other").total(), 0);
}

TEST_F(ResultsDbTest, RejectsBadSpecs) {
  ResultsDb db(path_);
  auto bad = spec("F0", 1.0, 0.4);
  bad.config_json = "{not json";
  EXPECT_NE(error_of([&] { db.add_trial(bad); }).find("config_json"), std::string::npos);
  bad.config_json = "[1,2]";
  EXPECT_NE(error_of([&] { db.add_trial(bad); }).find("JSON object"), std::string::npos);
  EXPECT_NE(error_of([&] { db.add_trial(spec("F0", 0.0, 0.4)); }).find("epochs"), std::string::npos);
  EXPECT_NE(error_of([&] { db.add_trial(spec("", 1.0, 0.4)); }).find("model"), std::string::npos);
  EXPECT_EQ(db.trials("s1").size(), 0u);
}

TEST_F(ResultsDbTest, ClaimsInOrderThenIdAndSeesDynamicallyAddedTrials) {
  ResultsDb db(path_);
  int64_t late = db.add_trial(spec("F0", 1, 0.8, 0, /*order=*/5));
  int64_t first = db.add_trial(spec("F0", 1, 0.4, 0, /*order=*/1));
  int64_t second = db.add_trial(spec("F0", 1, 1.6, 0, /*order=*/1));
  auto t1 = db.claim_next("s1", "w", 60);
  ASSERT_TRUE(t1);
  EXPECT_EQ(t1->id, first);
  EXPECT_EQ(t1->status, TrialStatus::Running);
  EXPECT_EQ(t1->worker_id, "w");
  EXPECT_EQ(t1->attempts, 1);
  EXPECT_EQ(t1->spec.config_json, R"({"batch": 64})");
  EXPECT_EQ(db.claim_next("s1", "w", 60)->id, second);
  // The adaptive LR search adds a trial after seeing results; it jumps the queue with a lower order.
  int64_t urgent = db.add_trial(spec("F0", 1, 3.2, 0, /*order=*/0));
  EXPECT_EQ(db.claim_next("s1", "w", 60)->id, urgent);
  EXPECT_EQ(db.claim_next("s1", "w", 60)->id, late);
  EXPECT_FALSE(db.claim_next("s1", "w", 60));
  EXPECT_FALSE(db.claim_next("other-study", "w", 60));
  EXPECT_EQ(db.counts("s1").running, 4);
}

TEST_F(ResultsDbTest, FinishStoresResultsAndOnlyOwnerMayFinish) {
  ResultsDb db(path_);
  int64_t id = db.add_trial(spec("F1", 2, 0.8));
  auto t = db.claim_next("s1", "alice", 60);
  ASSERT_TRUE(t);
  db.set_run_dir(id, "alice", "runs/f1_e2");
  std::string err = error_of([&] { db.finish(id, "bob", result(1.0)); });
  EXPECT_NE(err.find("owned by worker 'alice'"), std::string::npos) << err;
  EXPECT_NE(err.find(path_), std::string::npos) << err;
  EXPECT_NE(error_of([&] { db.set_checkpoint(id, "bob", "x"); }), "");
  EXPECT_FALSE(db.heartbeat(id, "bob"));
  EXPECT_TRUE(db.heartbeat(id, "alice"));
  db.finish(id, "alice", result(2.5));
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
  EXPECT_NE(error_of([&] { db.finish(id, "alice", result(1.0)); }).find("is done"), std::string::npos);
  EXPECT_NE(error_of([&] { db.fail(id, "alice", "x"); }), "");
  EXPECT_FALSE(db.heartbeat(id, "alice"));
  EXPECT_NE(error_of([&] { db.finish(999, "alice", result(1.0)); }).find("does not exist"), std::string::npos);
}

TEST_F(ResultsDbTest, FailAndResetFailed) {
  ResultsDb db(path_);
  int64_t id = db.add_trial(spec("F0", 1, 0.4));
  db.add_trial(spec("F0", 1, 0.8));
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

TEST_F(ResultsDbTest, StaleClaimIsRecoveredAndOldOwnerIsLockedOut) {
  ResultsDb db(path_);
  double t = 1000.0;
  db.set_clock([&] { return t; });
  int64_t id = db.add_trial(spec("F3", 4, 0.4));
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
  EXPECT_NE(error_of([&] { db.finish(id, "dead", result(1)); }).find("taken over"), std::string::npos);
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

TEST_F(ResultsDbTest, EvalPointsAreIdempotentPerStep) {
  ResultsDb db(path_);
  int64_t id = db.add_trial(spec("F0", 1, 0.4));
  db.add_eval_point(id, {200, 0.5, 12800, 1e10, 3.0, 0.6});
  db.add_eval_point(id, {100, 0.25, 6400, 5e9, 4.0, 0.8});
  db.add_eval_point(id, {200, 0.5, 12800, 1e10, 2.9, 0.58});  // resumed run re-logs step 200
  auto pts = db.eval_points(id);
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].step, 100);
  EXPECT_EQ(pts[1].step, 200);
  EXPECT_DOUBLE_EQ(pts[1].holdout_loss, 2.9);
  EXPECT_EQ(pts[1].examples_seen, 12800);
  EXPECT_NE(error_of([&] { db.add_eval_point(12345, {1, 0, 0, 0, 0, 0}); }).find("add eval point"),
            std::string::npos);
}

TEST_F(ResultsDbTest, ReopeningKeepsEverything) {
  int64_t id;
  {
    ResultsDb db(path_);
    id = db.add_trial(spec("F0", 1, 0.4));
    db.add_trial(spec("F1", 1, 0.4));
    db.claim_next("s1", "w", 60);
    db.add_eval_point(id, {10, 0.1, 640, 1e9, 5.0, 0.9});
    db.finish(id, "w", result(1.25));
  }
  ResultsDb db(path_);
  auto all = db.trials("s1");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].status, TrialStatus::Done);
  EXPECT_DOUBLE_EQ(all[0].result->holdout_loss, 1.25);
  EXPECT_EQ(all[1].status, TrialStatus::Pending);
  EXPECT_EQ(db.eval_points(id).size(), 1u);
  EXPECT_EQ(db.studies(), std::vector<std::string>{"s1"});
  EXPECT_EQ(db.add_trial(spec("F0", 1, 0.4)), id);
}

TEST_F(ResultsDbTest, NonDatabaseFilesGiveClearErrors) {
  {
    std::ofstream f(path_);
    f << "this is a text file, not a database; " << std::string(4000, 'x');
  }
  std::string err = error_of([&] { ResultsDb db(path_); });
  EXPECT_NE(err.find(path_), std::string::npos) << err;
  EXPECT_NE(err.find("not an SQLite database"), std::string::npos) << err;

  std::string other = (dir_ / "other.db").string();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &raw), SQLITE_OK);
  sqlite3_exec(raw, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  err = error_of([&] { ResultsDb db(other); });
  EXPECT_NE(err.find("not an nfscale results database"), std::string::npos) << err;

  { ResultsDb db((dir_ / "newer.db").string()); }
  ASSERT_EQ(sqlite3_open((dir_ / "newer.db").c_str(), &raw), SQLITE_OK);
  sqlite3_exec(raw, "UPDATE meta SET value='99' WHERE key='schema_version'", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  err = error_of([&] { ResultsDb db((dir_ / "newer.db").string()); });
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
}

// Simulates a worker: claim until nothing is left, finish each; returns the ids it claimed.
std::vector<int64_t> work(const std::string& path, const std::string& worker) {
  ResultsDb db(path);
  std::vector<int64_t> ids;
  while (auto t = db.claim_next("s1", worker, 600)) {
    ids.push_back(t->id);
    db.add_eval_point(t->id, {1, 0.1, 10, 1.0, 1.0, 0.5});
    db.finish(t->id, worker, TrialResult{});
  }
  return ids;
}

void expect_each_done_once(const std::string& path, const std::vector<int64_t>& claimed, size_t n) {
  std::vector<int64_t> sorted = claimed;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "a trial was claimed twice";
  EXPECT_EQ(sorted.size(), n);
  ResultsDb db(path);
  for (const auto& t : db.trials("s1")) {
    EXPECT_EQ(t.status, TrialStatus::Done) << t.id;
    EXPECT_EQ(t.attempts, 1) << t.id;
  }
  EXPECT_EQ(db.counts("s1").done, static_cast<int64_t>(n));
}

TEST_F(ResultsDbTest, ConcurrentThreadsWithSeparateConnectionsClaimEachTrialOnce) {
  const int n = 40;
  {
    ResultsDb db(path_);
    for (int i = 0; i < n; ++i) db.add_trial(spec("F0", 1, 0.1 * (i + 1)));
  }
  std::vector<std::vector<int64_t>> per(4);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) threads.emplace_back([&, w] { per[w] = work(path_, "t" + std::to_string(w)); });
  for (auto& th : threads) th.join();
  std::vector<int64_t> all;
  for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
  expect_each_done_once(path_, all, n);
}

TEST_F(ResultsDbTest, ConcurrentProcessesClaimEachTrialOnce) {
  const int n = 30;
  {
    ResultsDb db(path_);
    for (int i = 0; i < n; ++i) db.add_trial(spec("F1", 2, 0.05 * (i + 1)));
  }
  std::vector<pid_t> kids;
  for (int w = 0; w < 3; ++w) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        auto ids = work(path_, "p" + std::to_string(w));
        std::ofstream out((dir_ / ("claimed" + std::to_string(w))).string());
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
    std::ifstream in((dir_ / ("claimed" + std::to_string(w))).string());
    int64_t id;
    while (in >> id) all.push_back(id);
  }
  expect_each_done_once(path_, all, n);
}

TEST_F(ResultsDbTest, LeaseHeartbeatsAndNoticesTakeover) {
  ResultsDb db(path_);
  int64_t id = db.add_trial(spec("F0", 1, 0.4));
  auto t = db.claim_next("s1", "w1", 60);
  ASSERT_TRUE(t);
  const double claimed = *t->heartbeat_at;
  {
    TrialLease lease(path_, id, "w1", 0.02);
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

}  // namespace
