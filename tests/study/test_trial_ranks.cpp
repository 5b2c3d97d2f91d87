// test_trial_ranks.cpp - sweep trials as N data-parallel ranks (`nfscale sweep --trial-nproc 2`): the stored
// held-out losses equal the one-process sweep's within the fp32 bound, every trial is done exactly once, and a
// rank killed with SIGKILL mid-trial fails only that attempt: the trial is given back, resumed from its
// checkpoint by the next claim, and recorded once. A claim lost to another worker stops the ranks at a step
// boundary with a checkpoint. A batch that does not split over the ranks is refused up front.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers fresh_dir, kBinary share names with another test file's).
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "nfscale/store/results_store.h"
#include "nfscale/study/study_spec.h"
#include "nfscale/util/process.h"

namespace nfscale::study {
namespace {
namespace fs = std::filesystem;

const std::string kBinary = std::string(NFSCALE_BINARY_DIR) + "/bin/nfscale";

// 1 model x 1 budget x 2 LRs on the digits data at 24 px. Global batch 32 in micro-batches of 16: one process
// accumulates two, each of two ranks computes one, so both compute the same per-micro-batch gradients.
nlohmann::json study_json(const fs::path& out) {
  return {{"name", "tr"},
          {"models", {"mini-F0"}},
          {"epochs", {0.5}},
          {"lrs", {0.4, 0.8}},
          {"seeds", {0}},
          {"out_dir", out.string()},
          {"train",
           {{"data", "digits"},
            {"holdout", 200},
            {"resolution", 24},
            {"batch", 32},
            {"micro_batch", 16},
            {"eval_points", 2},
            {"checkpoint_steps", 1},
            {"log_every", 1},
            {"precision", "fp32"}}}};
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("nfscale_trial_ranks_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string write_study(const fs::path& dir, const nlohmann::json& j) {
  const std::string path = (dir / "study.json").string();
  std::ofstream(path) << j.dump(2);
  return path;
}

std::vector<std::string> sweep_cmd(const std::string& file, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> c{kBinary, "--threads", "2", "sweep", "--study-file", file, "--preset", "smoke"};
  c.insert(c.end(), extra.begin(), extra.end());
  return c;
}

pid_t spawn(const std::vector<std::string>& args, const std::string& err) {
  SpawnOptions o;
  o.stderr_path = err;
  return spawn_process(args, o);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Trials of study "tr" in <out>/results.sqlite, by LR.
std::map<double, store::Trial> trials_by_lr(const fs::path& out) {
  std::map<double, store::Trial> m;
  for (auto& t : store::open_results_store((out / "results.sqlite").string(), store::OpenMode::MustExist)->trials("tr"))
    m[t.spec.lr] = t;
  return m;
}

// The direct children of `pid` (a worker's ranks), from /proc.
std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  pid_t c;
  while (in >> c) out.push_back(c);
  return out;
}

// The value of `flag` on the command line of process `pid`, from /proc ("" if it has none or is gone).
std::string arg_of(pid_t pid, const std::string& flag) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag) return args[i + 1];
  return "";
}

// Training-step lines rank 0 has logged so far in <dir>/metrics.jsonl.
int train_lines(const fs::path& dir) {
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find("\"type\":\"train\"") != std::string::npos;
  return n;
}

// A trial of a worker running as 2 ranks: their pids and the trial's run dir.
struct RankedTrial {
  std::vector<pid_t> ranks;  // empty when the worker ended (or 120 s passed) first
  fs::path run_dir;
};

// Waits until `worker` trains a trial as 2 ranks that have logged at least `steps` training steps.
RankedTrial wait_for_ranks(pid_t worker, int steps) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && process_exists(worker)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto ranks = children_of(worker);
    if (ranks.size() != 2) continue;  // between trials, or still starting
    const std::string run_dir = arg_of(ranks[1], "--run-dir");
    if (!run_dir.empty() && train_lines(run_dir) >= steps) return {ranks, run_dir};
  }
  return {};
}

// fp32 bound for a 2-rank trial against one process (as tests/dist states for training): relative 1e-5.
constexpr double kRelBound = 1e-5;

TEST(TrialRanks, TwoRanksPerTrialRecordTheOneProcessLossesOnceAndACrashedRankIsRetried) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const fs::path dir = fresh_dir("eq");
  const fs::path out1 = dir / "one", out2 = dir / "ranks";
  const std::string file1 = write_study(dir, study_json(out1));
  ASSERT_EQ(wait_process(spawn(sweep_cmd(file1), (dir / "one.err").string())), 0) << slurp(dir / "one.err");

  // The same study as 2 ranks per trial; rank 1 of the first trial is killed with SIGKILL after a few steps.
  const fs::path dir2 = dir / "r";
  fs::create_directories(dir2);
  const std::string file2 = write_study(dir2, study_json(out2));
  const std::string err2 = (dir / "ranks.err").string();
  const pid_t worker = spawn(sweep_cmd(file2, {"--trial-nproc", "2"}), err2);
  const RankedTrial running = wait_for_ranks(worker, 3);
  ASSERT_EQ(running.ranks.size(), 2u) << "never saw a trial's two ranks training: " << slurp(err2);
  // The worker's 2 threads are split between its 2 ranks.
  EXPECT_EQ(arg_of(running.ranks[0], "--threads"), "1");
  EXPECT_EQ(arg_of(running.ranks[1], "--threads"), "1");
  signal_process(running.ranks[1], SIGKILL);
  const fs::path killed_dir = running.run_dir;
  ASSERT_EQ(wait_process(worker), 0) << slurp(err2);
  const std::string log = slurp(err2);
  EXPECT_NE(log.find("was killed by signal 9"), std::string::npos) << log;
  EXPECT_NE(log.find("given back for a retry"), std::string::npos) << log;

  const auto one = trials_by_lr(out1), ranks = trials_by_lr(out2);
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(ranks.size(), 2u);
  int retried = 0;
  for (const auto& [lr, t] : ranks) {
    ASSERT_EQ(t.status, store::TrialStatus::Done) << "lr " << lr << ": " << t.error;
    ASSERT_TRUE(t.result.has_value());
    // The rank path wrote its hand-over files (one process does not): this trial really ran as ranks.
    EXPECT_TRUE(fs::exists(fs::path(t.run_dir) / "trial-outcome.json")) << t.run_dir;
    const bool was_killed = fs::equivalent(t.run_dir, killed_dir);
    EXPECT_EQ(t.attempts, was_killed ? 2 : 1) << "lr " << lr << " (killed: " << was_killed << ")";
    retried += was_killed;
    const store::Trial& ref = one.at(lr);
    ASSERT_EQ(ref.status, store::TrialStatus::Done);
    const double a = t.result->holdout_loss, b = ref.result->holdout_loss;
    EXPECT_TRUE(std::isfinite(a));
    EXPECT_LE(std::fabs(a - b), kRelBound * std::fabs(b)) << "lr " << lr << ": 2 ranks " << a << " vs 1 process " << b;
    EXPECT_DOUBLE_EQ(t.result->flops, ref.result->flops);
    const auto pr = store::open_results_store((out2 / "results.sqlite").string())->eval_points(t.id);
    const auto p1 = store::open_results_store((out1 / "results.sqlite").string())->eval_points(ref.id);
    ASSERT_EQ(pr.size(), p1.size()) << "lr " << lr;
    for (size_t i = 0; i < pr.size(); ++i) {
      EXPECT_EQ(pr[i].step, p1[i].step);
      EXPECT_LE(std::fabs(pr[i].holdout_loss - p1[i].holdout_loss), kRelBound * std::fabs(p1[i].holdout_loss));
    }
    std::printf("[ info ] lr %g: held-out loss 1 process %.17g, 2 ranks %.17g (|diff| %.3g), attempts %d\n", lr, b,
                a, std::fabs(a - b), t.attempts);
  }
  EXPECT_EQ(retried, 1);
  fs::remove_all(dir);
}

TEST(TrialRanks, ALostClaimStopsTheRanksWithACheckpointAndRecordsNothing) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const fs::path dir = fresh_dir("lost");
  nlohmann::json j = study_json(dir / "out");
  j["lrs"] = {0.4};
  j["epochs"] = {3.0};  // ~150 steps: far longer than it takes to notice the lost claim
  const std::string file = write_study(dir, j);
  const std::string err = (dir / "err").string();
  const pid_t worker = spawn(sweep_cmd(file, {"--trial-nproc", "2", "--stale-after", "6"}), err);
  const std::string db_path = (dir / "out" / "results.sqlite").string();
  // Once the trial's ranks are 3 steps in, another worker takes the claim over (as if this one's heartbeat were
  // ten minutes old); the worker's next heartbeat (every second) finds the claim lost.
  const RankedTrial running = wait_for_ranks(worker, 3);
  ASSERT_EQ(running.ranks.size(), 2u) << "never saw the trial's two ranks training: " << slurp(err);
  const fs::path run_dir = running.run_dir;
  bool stolen = false;
  {
    auto db = store::open_results_store(db_path, store::OpenMode::MustExist);
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    db->set_clock([now] { return now + 600; });
    stolen = db->claim_next("tr", "thief:1", 90).has_value();
  }
  ASSERT_TRUE(stolen) << slurp(err);
  const auto t_stolen = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_process(worker), 0) << slurp(err);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_stolen).count();
  const std::string log = slurp(err);
  EXPECT_NE(log.find("claim lost to another worker"), std::string::npos) << log;
  EXPECT_LT(seconds, 30.0) << "the ranks should stop within a heartbeat and a step";
  const auto trials = store::open_results_store(db_path)->trials("tr");
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].status, store::TrialStatus::Running);
  EXPECT_EQ(trials[0].worker_id, "thief:1");
  EXPECT_FALSE(fs::exists(run_dir / "result.json")) << "the ranks trained on to the end";
  EXPECT_TRUE(fs::exists(run_dir / "checkpoint.pt"));
  const auto outcome = nlohmann::json::parse(slurp(run_dir / "trial-outcome.json"));
  EXPECT_EQ(outcome.at("status"), "interrupted");
  std::printf("[ info ] claim lost after %d steps; worker and ranks stopped %.2f s later\n", train_lines(run_dir),
              seconds);
  fs::remove_all(dir);
}

TEST(TrialRanks, ABatchThatDoesNotSplitOverTheRanksIsRefusedBeforeAnyTrialIsClaimed) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const fs::path dir = fresh_dir("split");
  const std::string file = write_study(dir, study_json(dir / "out"));
  const std::string err = (dir / "err").string();
  EXPECT_EQ(wait_process(spawn(sweep_cmd(file, {"--trial-nproc", "3"}), err)), 2);
  const std::string log = slurp(err);
  EXPECT_NE(log.find("--trial-nproc 3"), std::string::npos) << log;
  EXPECT_NE(log.find("batch 32"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir / "out" / "results.sqlite")) << "nothing should have been registered";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nfscale::study
