// test_sweep.cpp - the sweep's guarantees on both results-store backends (SQLite, PostgreSQL): a study killed with
// kill -9 and re-run completes with no trial duplicated or lost and no finished trial repeated; two workers share
// one store; a dead worker's stale claim is recovered; the adaptive LR search expands over per-model budgets; on PostgreSQL, lost server
// connections mid-trial lose nothing and repeat nothing, and a password in the --db URI appears nowhere a run writes.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers kBinary share names with another test file's).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "../store/store_test_util.h"
#include "nfscale/store/results_store.h"
#include "nfscale/study/sweep.h"
#include "nfscale/util/process.h"

namespace nfscale::study {
namespace {
namespace fs = std::filesystem;
using store::StoreKind;
using store::test_util::ScratchStore;

const std::string kBinary = std::string(NFSCALE_BINARY_DIR) + "/bin/nfscale";

// A study small enough for CI: 1 model x 2 budgets x 2 LRs on the digits data at 24 px (JSON study file).
nlohmann::json study_json(const fs::path& dir) {
  return {{"name", "t"},
          {"models", {"mini-F0"}},
          {"epochs", {0.25, 0.5}},
          {"lrs", {0.4, 0.8}},
          {"seeds", {0}},
          {"out_dir", (dir / "out").string()},
          {"train",
           {{"data", "digits"},
            {"holdout", 200},
            {"resolution", 24},
            {"batch", 32},
            {"eval_points", 2},
            {"checkpoint_steps", 2},
            {"precision", "fp32"}}}};
}

std::string write_study_file(const fs::path& dir, const nlohmann::json& j) {
  fs::create_directories(dir);
  const std::string path = (dir / "study.json").string();
  std::ofstream(path) << j.dump(2);
  return path;
}

pid_t spawn(const std::vector<std::string>& args, const std::string& stderr_path = "/dev/null") {
  SpawnOptions o;
  o.stderr_path = stderr_path;
  return spawn_process(args, o);
}

// Each sweep test runs on a fresh store of its backend; SQLite uses the default location (<out>/results.sqlite,
// no --db), PostgreSQL a fresh database passed with --db.
class SweepTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    if (GetParam() == StoreKind::Postgres) NFSCALE_REQUIRE_TEST_PG();
    ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
    scratch_ = std::make_unique<ScratchStore>(GetParam(), "sweep");
    dir_ = scratch_->dir();
    location_ = GetParam() == StoreKind::Sqlite ? (dir_ / "out" / "results.sqlite").string() : scratch_->location();
  }
  void TearDown() override { scratch_.reset(); }

  std::vector<std::string> sweep_cmd(const std::string& file, std::vector<std::string> extra = {}) const {
    std::vector<std::string> cmd = {kBinary, "--threads", "1", "sweep", "--study-file", file, "--preset", "smoke"};
    if (GetParam() == StoreKind::Postgres) cmd.insert(cmd.end(), {"--db", location_});
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    return cmd;
  }
  std::unique_ptr<store::ResultsStore> open() const { return store::open_results_store(location_); }

  void expect_complete_and_unique(int expected_trials) const {
    auto db = open();
    auto trials = db->trials("t");
    ASSERT_EQ(static_cast<int>(trials.size()), expected_trials);
    std::set<std::tuple<std::string, double, double, int64_t>> keys;
    for (auto& t : trials) {
      EXPECT_EQ(t.status, store::TrialStatus::Done) << "trial " << t.id << ": " << t.error;
      ASSERT_TRUE(t.result.has_value());
      EXPECT_TRUE(std::isfinite(t.result->holdout_loss));
      EXPECT_GT(t.result->flops, 0);
      keys.insert({t.spec.model, t.spec.epochs, t.spec.lr, t.spec.seed});
      EXPECT_FALSE(db->eval_points(t.id).empty());
    }
    EXPECT_EQ(static_cast<int>(keys.size()), expected_trials);
  }

  std::unique_ptr<ScratchStore> scratch_;
  fs::path dir_;
  std::string location_;
};

std::string backend_name(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::Sqlite ? "SQLite" : "PostgreSQL";
}

TEST_P(SweepTest, KilledWithSigkillAndRerunCompletesWithoutDuplicatesOrRepeats) {
  const std::string file = write_study_file(dir_, study_json(dir_));
  const auto cmd = sweep_cmd(file);
  // Kill the sweep at a few moments; each re-run must pick up where it stopped.
  std::map<int64_t, double> finished_at;  // trial -> finish time seen before a re-run
  for (int delay_ms : {2500, 4000, 3000}) {
    pid_t pid = spawn(cmd);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    signal_process(pid, SIGKILL);
    wait_process(pid);
    if (GetParam() == StoreKind::Postgres || fs::exists(location_)) {
      auto db = open();
      for (auto& t : db->trials("t")) {
        if (t.status != store::TrialStatus::Done) continue;
        if (finished_at.count(t.id)) {
          EXPECT_EQ(finished_at[t.id], *t.finished_at) << "finished trial re-run";
        }
        finished_at[t.id] = *t.finished_at;
      }
    }
  }
  ASSERT_EQ(wait_process(spawn(cmd)), 0);
  expect_complete_and_unique(4);
  auto db = open();
  for (auto& t : db->trials("t")) {
    if (finished_at.count(t.id)) {
      EXPECT_EQ(finished_at[t.id], *t.finished_at) << "finished trial " << t.id << " re-run";
    }
  }
  // A further re-run finds nothing to do and changes nothing.
  ASSERT_EQ(wait_process(spawn(cmd)), 0);
  for (auto& t : open()->trials("t")) EXPECT_EQ(t.attempts, db->trial(t.id)->attempts);
}

TEST_P(SweepTest, TwoWorkersShareOneStore) {
  // Enough work that the second worker (a new process, ~1 s to start) still finds pending trials when it starts: with
  // the default 4 short trials the first worker sometimes finished them all alone (1 in 3 runs once the optimiser
  // step got faster).
  nlohmann::json j = study_json(dir_);
  j["epochs"] = {0.5, 1.0};
  j["lrs"] = {0.2, 0.4, 0.8};
  const std::string file = write_study_file(dir_, j);
  ASSERT_EQ(wait_process(spawn(sweep_cmd(file, {"--workers", "2"}))), 0);
  expect_complete_and_unique(6);
  std::set<std::string> workers;
  for (auto& t : open()->trials("t")) {
    EXPECT_EQ(t.attempts, 1) << "trial " << t.id << " was claimed more than once";
    workers.insert(t.worker_id);
  }
  EXPECT_EQ(workers.size(), 2u) << "both workers should have trained trials";
}

TEST_P(SweepTest, AWorkerWithThenStudyFileDrainsBothStudies) {
  // What the planner check's worker does (plan_check.cpp): its own study's trial, then the seed repeats of the main
  // study; here a 1-trial study "a", then a 2-trial study "t", both registered first, one worker process.
  nlohmann::json ja = study_json(dir_ / "a");
  ja["name"] = "a";
  ja["epochs"] = {0.25};
  ja["lrs"] = {0.4};
  nlohmann::json jt = study_json(dir_);
  jt["epochs"] = {0.25};
  const std::string fa = write_study_file(dir_ / "a", ja), ft = write_study_file(dir_, jt);
  for (const auto& [j, f] : {std::make_pair(ja, fa), std::make_pair(jt, ft)}) {
    StudySpec spec = study_from_json(j, f, preset("smoke"));
    if (GetParam() == StoreKind::Postgres) spec.db = location_;
    fs::create_directories(spec.out_dir);
    register_study(*store::open_results_store(spec.db_path()), spec);
  }
  const std::string log = (dir_ / "worker.log").string();
  ASSERT_EQ(wait_process(spawn(sweep_cmd(fa, {"--worker-only", "--then-study-file", ft}), log)), 0) << "see " << log;
  const std::string a_db = GetParam() == StoreKind::Sqlite ? (dir_ / "a" / "out" / "results.sqlite").string() : location_;
  const auto a_trials = store::open_results_store(a_db)->trials("a");
  ASSERT_EQ(a_trials.size(), 1u);
  EXPECT_EQ(a_trials[0].status, store::TrialStatus::Done) << a_trials[0].error;
  expect_complete_and_unique(2);
  for (auto& t : open()->trials("t")) EXPECT_EQ(t.worker_id, a_trials[0].worker_id) << "one worker trained both";
  // Without --worker-only the flag is refused.
  const std::string log2 = (dir_ / "refused.log").string();
  EXPECT_NE(wait_process(spawn(sweep_cmd(ft, {"--then-study-file", fa}), log2)), 0);
  std::ifstream in(log2);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("--then-study-file is for --worker-only"), std::string::npos) << text;
}

TEST_P(SweepTest, StaleClaimOfAWorkerOnAnotherHostIsRecovered) {
  nlohmann::json j = study_json(dir_);
  j["epochs"] = {0.25};
  const std::string file = write_study_file(dir_, j);
  StudySpec spec = study_from_json(j, file, preset("smoke"));
  int64_t stale_id = 0;
  {
    auto db = open();
    register_study(*db, spec);
    // A worker on another host claimed the first trial and died: its heartbeat is ten minutes old.
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    db->set_clock([now] { return now - 600; });
    auto t = db->claim_next("t", "other-host:4242", 90);
    ASSERT_TRUE(t);
    stale_id = t->id;
  }
  ASSERT_EQ(wait_process(spawn(sweep_cmd(file, {"--stale-after", "60"}))), 0);
  expect_complete_and_unique(2);
  for (auto& t : open()->trials("t")) {
    EXPECT_NE(t.worker_id, "other-host:4242");
    EXPECT_EQ(t.attempts, t.id == stale_id ? 2 : 1) << "trial " << t.id;
  }
}

TEST_P(SweepTest, AdaptiveLrSearchExpandsUntilBracketedAndOpensTheNextBudget) {
  nlohmann::json j = study_json(dir_);
  j["lrs"] = {0.4};
  j["adaptive_lr"] = true;
  j["max_lr_trials"] = 4;
  // The model's own budgets replace the study's: without model_epochs only 0.25 would be swept.
  j["epochs"] = {0.25};
  j["model_epochs"] = {{"mini-F0", {0.25, 0.5}}};
  const std::string file = write_study_file(dir_, j);
  ASSERT_EQ(wait_process(spawn(sweep_cmd(file))), 0);
  auto trials = open()->trials("t");
  std::map<double, std::vector<std::pair<double, double>>> by_budget;  // epochs -> (lr, loss)
  for (auto& t : trials) {
    EXPECT_EQ(t.status, store::TrialStatus::Done) << t.error;
    if (t.result) by_budget[t.spec.epochs].push_back({t.spec.lr, t.result->holdout_loss});
  }
  ASSERT_EQ(by_budget.size(), 2u) << "the 0.5-epoch budget should have been opened";
  auto has_lr = [](const std::vector<std::pair<double, double>>& group, double lr) {
    for (auto& [l, loss] : group)
      if (std::fabs(l - lr) < 1e-12) return true;
    return false;
  };
  for (auto& [e, group] : by_budget) {
    EXPECT_GE(group.size(), 3u) << "budget " << e << ": a group opens with {c/2, c, 2c}";
    EXPECT_LE(group.size(), 4u) << "budget " << e << ": max_lr_trials exceeded";
    EXPECT_EQ(next_adaptive_lr(group, 4), 0.0) << "budget " << e << ": search stopped before it was done";
  }
  // The first budget opens around the study's LR, the second around the first budget's best LR.
  auto first = by_budget.begin()->second;
  for (double lr : {0.2, 0.4, 0.8}) EXPECT_TRUE(has_lr(first, lr)) << "0.25-epoch group lacks LR " << lr;
  const double best = std::min_element(first.begin(), first.end(), [](auto& a, auto& b) {
                        return a.second < b.second;
                      })->first;
  for (double lr : {best / 2, best, best * 2})
    EXPECT_TRUE(has_lr(by_budget.rbegin()->second, lr)) << "0.5-epoch group did not open with LR " << lr;
}

INSTANTIATE_TEST_SUITE_P(Backends, SweepTest, ::testing::Values(StoreKind::Sqlite, StoreKind::Postgres),
                         backend_name);

// Terminates every server connection to `database` except the caller's (as a server restart would).
int terminate_connections(const std::string& database) {
  auto rows = store::test_util::pg_admin(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='" + database +
      "' AND pid <> pg_backend_pid()");
  return static_cast<int>(rows.size());
}

TEST(SweepPostgres, LostConnectionsMidTrialLoseNothingAndRepeatNothing) {
  NFSCALE_REQUIRE_TEST_PG();
  ScratchStore scratch(StoreKind::Postgres, "sweeplost");
  const fs::path dir = scratch.dir();
  const std::string file = write_study_file(dir, study_json(dir));
  pid_t pid = spawn({kBinary, "--threads", "1", "sweep", "--study-file", file, "--preset", "smoke", "--db",
                     scratch.location()},
                    (dir / "stderr.txt").string());
  int terminated = 0;
  for (int i = 0; i < 600 && process_exists(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    terminated += terminate_connections(scratch.database());
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sweep failed; see " << (dir / "stderr.txt");
      pid = -1;
      break;
    }
  }
  if (pid > 0) {
    EXPECT_EQ(wait_process(pid), 0);
  }
  EXPECT_GE(terminated, 3) << "the test should have cut connections while trials ran";
  auto db = store::open_results_store(scratch.location());
  auto trials = db->trials("t");
  ASSERT_EQ(trials.size(), 4u);
  for (auto& t : trials) {
    EXPECT_EQ(t.status, store::TrialStatus::Done) << "trial " << t.id << ": " << t.error;
    EXPECT_EQ(t.attempts, 1) << "trial " << t.id << " was claimed again: its worker lost it";
    EXPECT_FALSE(db->eval_points(t.id).empty());
  }
}

// Everything below `dir`, read as bytes, concatenated with the file names.
std::string everything_under(const fs::path& dir) {
  std::string all;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    all += e.path().string() + "\n";
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    all += ss.str();
  }
  return all;
}

TEST(SweepPostgres, PasswordInTheDbUriAppearsNowhereARunWrites) {
  NFSCALE_REQUIRE_TEST_PG();
  const std::string role = "nfscale_sweep_pw_" + std::to_string(::getpid());
  const std::string password = "Zq7-secret-" + std::to_string(::getpid());
  store::test_util::pg_admin("DROP ROLE IF EXISTS " + role);
  store::test_util::pg_admin("CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'");
  {
    ScratchStore scratch(StoreKind::Postgres, "sweeppw", role);
    const fs::path dir = scratch.dir();
    const std::string uri = store::test_util::pg_uri_with(scratch.location(), scratch.database(), role + ":" + password);
    nlohmann::json j = study_json(dir);
    j["epochs"] = {0.25};  // 2 trials: enough for a report and a fit
    const std::string file = write_study_file(dir, j);
    auto run = [&](const std::string& name, std::vector<std::string> args) {
      SpawnOptions o;
      o.stdout_path = (dir / (name + ".stdout")).string();
      o.stderr_path = (dir / (name + ".stderr")).string();
      args.insert(args.begin(), {kBinary, "--threads", "1"});
      return wait_process(spawn_process(args, o));
    };
    EXPECT_EQ(run("sweep", {"sweep", "--study-file", file, "--preset", "smoke", "--workers", "2", "--db", uri}), 0);
    EXPECT_EQ(run("report", {"study", "--study-file", file, "--preset", "smoke", "--report-only", "--db", uri}), 0);
    EXPECT_EQ(run("fit", {"fit", "--db", uri, "--study", "t", "--bootstrap", "10", "--out",
                          (dir / "fit.json").string()}),
              0);
    // Failures print the location too: a wrong study and an unreachable host.
    EXPECT_NE(run("fit_missing", {"fit", "--db", uri, "--study", "no-such-study"}), 0);
    EXPECT_NE(run("unreachable",
                  {"fit", "--db", "postgresql://" + role + ":" + password + "@/x?host=/nonexistent", "--study", "t"}),
              0);
    const std::string written = everything_under(dir);
    EXPECT_NE(written.find(role + ":***@"), std::string::npos) << "the redacted URI should be shown somewhere";
    EXPECT_EQ(written.find(password), std::string::npos) << "the password leaked into a file under " << dir;
    // The results store itself: every text value of every table.
    std::string stored;
    for (const char* table : {"meta", "trials", "eval_points"})
      for (auto& row : store::test_util::pg_admin(std::string("SELECT t::text FROM ") + table + " t", scratch.database()))
        stored += row[0] + "\n";
    EXPECT_NE(stored.find("mini-F0"), std::string::npos);
    EXPECT_EQ(stored.find(password), std::string::npos) << "the password was stored in the results store";
    auto db = store::open_results_store(uri);
    for (auto& t : db->trials("t")) EXPECT_EQ(t.status, store::TrialStatus::Done) << t.error;
  }
  store::test_util::pg_admin("DROP ROLE " + role);
}

TEST(AdaptiveLr, StepsByTwoUntilBracketed) {
  const double inf = INFINITY, nan = NAN;
  EXPECT_EQ(next_adaptive_lr({{0.4, 1.0}}, 6), 0.2);                       // edge: try below first
  EXPECT_EQ(next_adaptive_lr({{0.4, 1.0}, {0.2, 1.2}}, 6), 0.8);           // lower was worse: go up
  EXPECT_EQ(next_adaptive_lr({{0.4, 1.0}, {0.2, 1.2}, {0.8, 1.1}}, 6), 0); // rises on both sides: done
  EXPECT_EQ(next_adaptive_lr({{0.4, 1.0}, {0.2, 0.9}}, 6), 0.1);           // still falling downwards
  EXPECT_EQ(next_adaptive_lr({{0.4, inf}}, 6), 0.2);                       // diverged: go lower
  EXPECT_EQ(next_adaptive_lr({{0.4, 1.0}, {0.2, nan}}, 6), 0);             // outstanding: wait
  EXPECT_EQ(next_adaptive_lr({{0.4, 1.0}, {0.2, 0.9}}, 2), 0);             // trial limit reached
}

// Claim order puts the most work ahead first: the largest member's chain of budgets before the small members'
// cells, and within one model the earlier budget (its whole chain is still ahead) before the later one.
TEST(ClaimOrder, MostWorkAheadFirst) {
  StudySpec s = preset("default");
  const std::string big = s.models.back(), small = s.models.front();
  EXPECT_LT(order_of(s, big, 0.25), order_of(s, small, 0.25));
  EXPECT_LT(order_of(s, big, 4), order_of(s, small, 0.25)) << "the long chain is the critical path";
  EXPECT_LT(order_of(s, big, 0.25), order_of(s, big, 8));
  EXPECT_LT(order_of(s, small, 0.5), order_of(s, small, 4));
  EXPECT_LT(order_of(s, big, 8), 1000000) << "every sweep trial before the seed repeats";
}

TEST(AdaptiveLr, AGroupOpensWithItsCentreAndBothNeighboursOrTheGivenLrs) {
  EXPECT_EQ(adaptive_start_lrs({1.6}), (std::vector<double>{0.8, 1.6, 3.2}));
  EXPECT_EQ(adaptive_start_lrs({0.4, 0.8}), (std::vector<double>{0.4, 0.8}));  // a user's grid is used as given
}

TEST(RegisterStudy, EachFamilyStartsFromItsOwnLearningRatesWithItsOwnOptimiser) {
  StudySpec s = preset("vs-vit");
  s.out_dir = (std::filesystem::temp_directory_path() / ("nfscale_register_mixed_" + std::to_string(getpid()))).string();
  std::filesystem::remove_all(s.out_dir);
  auto db = store::open_results_store(s.db_path());
  register_study(*db, s);
  std::map<std::string, std::set<double>> lrs;
  for (const auto& t : db->trials(s.name)) {
    lrs[t.spec.model].insert(t.spec.lr);
    EXPECT_EQ(t.spec.epochs, 0.25) << "adaptive: only the first budget is opened";
    const auto c = nlohmann::json::parse(t.spec.config_json);
    EXPECT_EQ(c.at("optimizer"), "auto") << "each family's own optimiser";
    EXPECT_LT(c.at("clip").get<double>(), 0) << "each family's own clipping";
  }
  ASSERT_EQ(lrs.size(), s.models.size());
  for (const auto& m : {"nano-F0", "micro-F0", "mini-F0"}) EXPECT_EQ(lrs[m], (std::set<double>{0.8, 1.6, 3.2})) << m;
  for (const auto& m : {"mini-ViT-Ti", "mini-ViT-S"})
    EXPECT_EQ(lrs[m], (std::set<double>{0.008, 0.016, 0.032})) << m;
  // A grid (not adaptive) uses the family's list as given.
  StudySpec g = s;
  g.name = "grid";
  g.adaptive_lr = false;
  g.models = {"nano-F0", "mini-ViT-Ti"};
  g.model_epochs.clear();
  g.epochs = {1};
  g.family_lrs["vit"] = {0.001, 0.002};
  register_study(*db, g);
  std::map<std::string, std::set<double>> grid;
  for (const auto& t : db->trials("grid")) grid[t.spec.model].insert(t.spec.lr);
  EXPECT_EQ(grid["nano-F0"], (std::set<double>{1.6}));
  EXPECT_EQ(grid["mini-ViT-Ti"], (std::set<double>{0.001, 0.002}));
  std::filesystem::remove_all(s.out_dir);
}

}  // namespace
}  // namespace nfscale::study
