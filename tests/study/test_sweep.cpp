// test_sweep.cpp - the sweep's guarantees: a study killed with kill -9 and re-run completes with no trial duplicated
// or lost and no finished trial repeated; two workers share one database; the adaptive LR search's decisions.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "nfscale/scaling/results_db.h"
#include "nfscale/study/sweep.h"

extern char** environ;

namespace nfscale::study {
namespace {
namespace fs = std::filesystem;

const std::string kBinary = std::string(NFSCALE_BINARY_DIR) + "/bin/nfscale";

// A study small enough for CI: 1 model x 2 budgets x 2 LRs on the digits data at 24 px.
std::string write_study_file(const fs::path& dir) {
  fs::create_directories(dir);
  const std::string path = (dir / "study.toml").string();
  std::ofstream(path) << "name = \"t\"\n"
                         "models = [\"mini-F0\"]\n"
                         "epochs = [0.25, 0.5]\n"
                         "lrs = [0.4, 0.8]\n"
                         "seeds = [0]\n"
                         "out_dir = \"" << (dir / "out").string() << "\"\n"
                         "[train]\n"
                         "data = \"digits\"\n"
                         "holdout = 200\n"
                         "resolution = 24\n"
                         "batch = 32\n"
                         "eval_points = 2\n"
                         "checkpoint_steps = 2\n"
                         "precision = \"fp32\"\n";
  return path;
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  EXPECT_EQ(posix_spawn(&pid, kBinary.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

void expect_complete_and_unique(const fs::path& db_path, int expected_trials) {
  scaling::ResultsDb db(db_path.string());
  auto trials = db.trials("t");
  ASSERT_EQ(static_cast<int>(trials.size()), expected_trials);
  std::set<std::tuple<std::string, double, double, int64_t>> keys;
  for (auto& t : trials) {
    EXPECT_EQ(t.status, scaling::TrialStatus::Done) << "trial " << t.id << ": " << t.error;
    ASSERT_TRUE(t.result.has_value());
    EXPECT_TRUE(std::isfinite(t.result->holdout_loss));
    EXPECT_GT(t.result->flops, 0);
    keys.insert({t.spec.model, t.spec.epochs, t.spec.lr, t.spec.seed});
    EXPECT_FALSE(db.eval_points(t.id).empty());
  }
  EXPECT_EQ(static_cast<int>(keys.size()), expected_trials);
}

TEST(Sweep, KilledWithSigkillAndRerunCompletesWithoutDuplicatesOrRepeats) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const fs::path dir = fs::temp_directory_path() / ("nfscale_sweep_kill_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string file = write_study_file(dir);
  const std::vector<std::string> cmd = {kBinary, "--threads", "1", "sweep", "--study-file", file, "--preset", "smoke"};
  const fs::path db_path = dir / "out" / "results.sqlite";

  // Kill the sweep at a few moments; each re-run must pick up where it stopped.
  std::map<int64_t, double> finished_at;  // trial -> finish time seen before a re-run
  for (int delay_ms : {2500, 4000, 3000}) {
    pid_t pid = spawn(cmd);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    wait_exit(pid);
    if (fs::exists(db_path)) {
      scaling::ResultsDb db(db_path.string());
      for (auto& t : db.trials("t")) {
        if (t.status != scaling::TrialStatus::Done) continue;
        if (finished_at.count(t.id)) EXPECT_EQ(finished_at[t.id], *t.finished_at) << "finished trial re-run";
        finished_at[t.id] = *t.finished_at;
      }
    }
  }
  ASSERT_EQ(wait_exit(spawn(cmd)), 0);
  expect_complete_and_unique(db_path, 4);
  scaling::ResultsDb db(db_path.string());
  for (auto& t : db.trials("t"))
    if (finished_at.count(t.id)) EXPECT_EQ(finished_at[t.id], *t.finished_at) << "finished trial " << t.id << " re-run";
  // A further re-run finds nothing to do and changes nothing.
  ASSERT_EQ(wait_exit(spawn(cmd)), 0);
  for (auto& t : scaling::ResultsDb(db_path.string()).trials("t"))
    EXPECT_EQ(t.attempts, db.trial(t.id)->attempts);
  fs::remove_all(dir);
}

TEST(Sweep, TwoWorkersShareOneDatabase) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const fs::path dir = fs::temp_directory_path() / ("nfscale_sweep_two_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string file = write_study_file(dir);
  ASSERT_EQ(wait_exit(spawn({kBinary, "sweep", "--study-file", file, "--preset", "smoke", "--workers", "2"})), 0);
  const fs::path db_path = dir / "out" / "results.sqlite";
  expect_complete_and_unique(db_path, 4);
  scaling::ResultsDb db(db_path.string());
  std::set<std::string> workers;
  for (auto& t : db.trials("t")) {
    EXPECT_EQ(t.attempts, 1) << "trial " << t.id << " was claimed more than once";
    workers.insert(t.worker_id);
  }
  EXPECT_EQ(workers.size(), 2u) << "both workers should have trained trials";
  fs::remove_all(dir);
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

}  // namespace
}  // namespace nfscale::study
