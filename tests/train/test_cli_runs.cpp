// test_cli_runs.cpp - the real `nfscale train` binary as a subprocess: kill -9 at random moments (including in the
// middle of checkpoint writes) and --resume until done gives final weights bitwise equal to an uninterrupted run;
// SIGTERM/SIGINT checkpoint and exit with status 130, --resume continues; bad input fails cleanly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <random>
#include <set>

#include "nfscale/optim/ema.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/checkpoint.h"
#include "train_test_util.h"

namespace nfscale::train {
namespace {
using namespace testing;
using Clock = std::chrono::steady_clock;

// CI-sized run: the digits training split (1,438 images), mini-F0 at 32 px, batch 32, 1 epoch = 45 steps,
// a checkpoint after every step, 1 intra-op thread (~2-3 s per uninterrupted run).
constexpr int64_t kTrainExamples = 1438, kBatch = 32, kSteps = (kTrainExamples + kBatch - 1) / kBatch;

std::vector<std::string> run_args(const std::string& run_dir, bool resume) {
  std::vector<std::string> a{"--threads", "1", "train", "--model", "mini-F0", "--data", "digits",
                             "--test-data", "none", "--res", "32", "--batch", std::to_string(kBatch), "--epochs", "1",
                             "--precision", "fp32", "--loader-threads", "1", "--checkpoint-steps", "1",
                             "--log-every", "1", "--seed", "11", "--quiet", "--run-dir", run_dir};
  if (resume) a.push_back("--resume");
  return a;
}

// Loads <dir>/checkpoint.pt fully (model, optimiser, EMA), as a resume would. Throws UserError if unreadable.
LoopState load_full_checkpoint(const std::string& dir) {
  models::Classifier m = digits_model();
  std::vector<optim::ParamSpec> specs;
  for (auto& p : m->param_info()) specs.push_back({p.name, p.param, p.weight_decay, p.agc});
  optim::SgdAgc opt(specs);
  optim::Ema ema(specs);
  return load_checkpoint(dir + "/checkpoint.pt", *m, opt, &ema);
}

// Compares weights.pt and weights_ema.pt of two run directories tensor by tensor (torch::equal).
void expect_same_weights(const std::string& ref_dir, const std::string& dir) {
  for (const char* file : {"/weights.pt", "/weights_ema.pt"}) {
    ASSERT_TRUE(std::filesystem::exists(dir + file)) << dir + file;
    models::Classifier a = digits_model(), b = digits_model();
    const int64_t na = load_weights(ref_dir + file, *a), nb = load_weights(dir + file, *b);
    EXPECT_EQ(na, nb);
    EXPECT_GT(na, 10);
    std::string first;
    EXPECT_EQ(count_different(*a, *b, &first), 0) << file << " differs from the uninterrupted run; first: " << first;
  }
}

// Number of train lines in metrics.jsonl (0 if absent); every line must parse (no torn lines).
size_t train_line_count(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/metrics.jsonl")) return 0;
  size_t n = 0;
  for (auto& j : read_jsonl(dir + "/metrics.jsonl")) n += j["type"] == "train";
  return n;
}

bool any_tmp_file(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) return true;
  return false;
}

class CliRuns : public ::testing::Test {
 protected:
  // One uninterrupted reference run shared by the tests of this suite.
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(binary_path())) return;
    ref_dir_ = fresh_dir("cli_ref");
    const auto t0 = Clock::now();
    ref_ = run_cli(run_args(ref_dir_, false), ref_dir_);
    ref_seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  void SetUp() override {
    NFSCALE_REQUIRE_BINARY();
    ASSERT_EQ(ref_.code, 0) << "reference run failed:\n" << ref_.err;
  }
  static std::string ref_dir_;
  static CliResult ref_;
  static double ref_seconds_;
};
std::string CliRuns::ref_dir_;
CliResult CliRuns::ref_;
double CliRuns::ref_seconds_ = 0.0;

TEST_F(CliRuns, ReferenceRunWritesTheRunDirectory) {
  for (const char* f : {"/config.json", "/checkpoint.pt", "/metrics.jsonl", "/weights.pt", "/weights_ema.pt",
                        "/result.json"})
    EXPECT_TRUE(std::filesystem::exists(ref_dir_ + f)) << f;
  const auto result = nlohmann::json::parse(slurp(ref_dir_ + "/result.json"));
  EXPECT_EQ(result["train_examples"].get<int64_t>(), kTrainExamples);
  EXPECT_EQ(result["steps"].get<int64_t>(), kSteps);
  EXPECT_TRUE(result["completed"].get<bool>());
  EXPECT_EQ(train_line_count(ref_dir_), size_t(kSteps));
  std::fprintf(stderr, "[info] uninterrupted CLI run: %.2f s wall for %lld steps\n", ref_seconds_,
               (long long)kSteps);
}

TEST_F(CliRuns, KillNineAtRandomMomentsThenResumeIsBitIdentical) {
  const std::string dir = fresh_dir("cli_kill9");
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("kill schedule seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  int kills = 0, kills_in_write = 0, kills_mid_run = 0, attempts = 0;
  std::set<int64_t> steps_seen;
  const std::string log = dir + "/attempts";
  std::filesystem::create_directories(log);
  int final_code = -1;
  while (true) {
    ASSERT_LT(++attempts, 40) << "no convergence after 40 attempts";
    const pid_t pid = spawn_cli(run_args(dir, true), log + "/out", log + "/err");
    ASSERT_GT(pid, 0);
    if (kills >= 10) {  // enough kills: let it finish
      final_code = wait_status(pid);
      break;
    }
    const std::string tmp_prefix = ".checkpoint.pt.tmp." + std::to_string(pid);
    int code = 0;
    bool exited = false, in_write = false;
    // Kill moments are tied to the run's progress, not to wall time, so a loaded machine cannot make the run finish
    // before the kills. Three kinds, in turn:
    if (kills % 3 == 0) {
      // A: during start-up (loading the data, building the model, reading the checkpoint): 0-300 ms after spawn.
      const auto until = Clock::now() + std::chrono::duration<double>(unif(rng) * 0.3);
      while (Clock::now() < until && !(exited = try_wait(pid, &code)))
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } else if (kills % 3 == 1) {
      // B: mid-step: after 2-3 new metrics lines of this attempt, plus a random 0-30 ms. A step's line comes before
      // its checkpoint, so the second new line guarantees the attempt saved progress: with one line, a loaded
      // machine (the checkpoint write outlasting the 30 ms) made B kills repeat the previous step, and the kills
      // failed to spread (3 distinct steps in 10 kills, seen under ctest -j2).
      const size_t target = train_line_count(dir) + 2 + size_t(unif(rng) * 2);
      const auto give_up = Clock::now() + std::chrono::duration<double>(ref_seconds_ * 3 + 10);
      while (train_line_count(dir) < target && Clock::now() < give_up && !(exited = try_wait(pid, &code)))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::microseconds(int(unif(rng) * 30000)));
    } else {
      // C: during the k-th checkpoint write of this attempt (k = 2 or 3, so every attempt makes progress),
      // a random 0-3 ms into the write.
      const int k = 2 + int(unif(rng) * 2);
      int seen = 0;
      bool was_present = false;
      const auto give_up = Clock::now() + std::chrono::duration<double>(ref_seconds_ * 3 + 10);
      while (!(exited = try_wait(pid, &code)) && Clock::now() < give_up) {
        const bool present = any_tmp_file(dir, tmp_prefix);
        if (present && !was_present && ++seen == k) {
          std::this_thread::sleep_for(std::chrono::microseconds(int(unif(rng) * 3000)));
          in_write = any_tmp_file(dir, tmp_prefix);
          break;
        }
        was_present = present;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    if (!exited) exited = try_wait(pid, &code);
    if (exited) {  // finished before the kill
      final_code = code;
      break;
    }
    ::kill(pid, SIGKILL);
    ASSERT_EQ(wait_status(pid), 1000 + SIGKILL);
    ++kills;
    kills_in_write += in_write;
    if (std::filesystem::exists(dir + "/checkpoint.pt")) {
      LoopState s;
      try {
        s = load_full_checkpoint(dir);
      } catch (const std::exception& e) {
        FAIL() << "checkpoint.pt unreadable after kill " << kills << ": " << e.what();
      }
      EXPECT_GE(s.step, 0);
      EXPECT_LE(s.step, kSteps);
      EXPECT_EQ(s.position, s.step * kBatch);
      kills_mid_run += s.step > 0 && s.step < kSteps;
      steps_seen.insert(s.step);
    }
    train_line_count(dir);  // metrics lines stay parseable after a kill
  }
  std::fprintf(stderr, "[info] kill -9: %d attempts, %d kills (%d inside a checkpoint write, %d mid-run)\n", attempts,
               kills, kills_in_write, kills_mid_run);
  ASSERT_EQ(final_code, 0) << slurp(log + "/err");
  EXPECT_EQ(kills, 10);
  EXPECT_GE(kills_mid_run, 4) << "the kills did not land inside the run; the test proved little";
  EXPECT_GE(kills_in_write, 1) << "no kill landed inside a checkpoint write";
  EXPECT_GE(steps_seen.size(), 4u) << "the kills did not spread over the run";
  const auto result = nlohmann::json::parse(slurp(dir + "/result.json"));
  EXPECT_EQ(result["steps"].get<int64_t>(), kSteps);
  expect_same_weights(ref_dir_, dir);
}

TEST_F(CliRuns, SigtermAndSigintCheckpointExitWith130AndResume) {
  const std::string dir = fresh_dir("cli_signal");
  const std::string out = dir + "/out", err = dir + "/err";
  int64_t last_step = 0;
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    const pid_t pid = spawn_cli(run_args(dir, true), out, err);
    ASSERT_GT(pid, 0);
    // Wait until this process has logged one more step than before (the handlers are installed by then).
    const size_t target = train_line_count(dir) + 1;
    int code = 0;
    bool exited = false;
    const auto give_up = Clock::now() + std::chrono::duration<double>(ref_seconds_ * 2 + 10);
    while (train_line_count(dir) < target && Clock::now() < give_up && !(exited = try_wait(pid, &code)))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_FALSE(exited) << "the run ended (status " << code << ") before it could be signalled:\n" << slurp(err);
    ::kill(pid, sig);
    ASSERT_EQ(wait_status(pid), 130) << slurp(err);
    const LoopState s = load_full_checkpoint(dir);
    EXPECT_GT(s.step, last_step);
    EXPECT_LT(s.step, kSteps);
    EXPECT_EQ(s.position, s.step * kBatch);
    EXPECT_FALSE(std::filesystem::exists(dir + "/result.json"));
    last_step = s.step;
  }
  const CliResult done = run_cli(run_args(dir, true), dir);
  ASSERT_EQ(done.code, 0) << done.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(dir + "/result.json"))["steps"].get<int64_t>(), kSteps);
  expect_same_weights(ref_dir_, dir);
}

// Every failure: non-zero exit, "error:" and the offending name on stderr, no C++/LibTorch stack trace.
void expect_clean_failure(const CliResult& r, const std::vector<std::string>& must_mention) {
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, 1000 + SIGABRT) << "crashed";
  EXPECT_NE(r.err.find("rror"), std::string::npos) << r.err;
  for (auto& word : must_mention) EXPECT_NE(r.err.find(word), std::string::npos) << "'" << word << "' not in: " << r.err;
  for (const char* trace : {"terminate called", "Exception raised from", "frame #", "internal error"})
    EXPECT_EQ(r.err.find(trace), std::string::npos) << "stack trace / internal error: " << r.err;
  EXPECT_LT(r.err.size(), 2000u) << r.err;
}

TEST(CliBadInput, FailsWithAClearMessage) {
  NFSCALE_REQUIRE_BINARY();
  const std::string dir = fresh_dir("cli_bad");
  const std::vector<std::string> base{"train", "--data", "digits", "--test-data", "none", "--epochs", "0.01",
                                      "--quiet", "--run-dir", dir + "/run"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  {
    SCOPED_TRACE("unknown model");
    expect_clean_failure(run_cli(with({"--model", "mini-F99"}), dir), {"mini-F99"});
  }
  {
    SCOPED_TRACE("zero resolution");
    expect_clean_failure(run_cli(with({"--model", "mini-F0", "--res", "0"}), dir), {"resolution"});
  }
  {
    SCOPED_TRACE("resolution below the minimum");
    expect_clean_failure(run_cli(with({"--model", "mini-F0", "--res", "9"}), dir), {"17"});
  }
  {
    SCOPED_TRACE("batch not divisible by micro-batch");
    expect_clean_failure(run_cli(with({"--model", "mini-F0", "--batch", "32", "--micro-batch", "5"}), dir),
                         {"micro_batch", "32"});
  }
  {
    SCOPED_TRACE("bad data kind");
    std::vector<std::string> a{"train", "--model", "mini-F0", "--data", "bogus-kind", "--quiet", "--run-dir",
                               dir + "/run"};
    expect_clean_failure(run_cli(a, dir), {"bogus-kind", "--data"});
  }
  {
    SCOPED_TRACE("unknown key in a TOML settings file");
    const std::string toml = dir + "/bad.toml";
    std::ofstream(toml) << "model = \"mini-F0\"\nlearning_rate = 0.1\n";
    expect_clean_failure(run_cli(with({"--config", toml}), dir), {"bad.toml", "learning_rate"});
  }
  {
    SCOPED_TRACE("unknown key in a JSON settings file");
    const std::string json = dir + "/bad.json";
    std::ofstream(json) << R"({"model": "mini-F0", "epochz": 2})";
    expect_clean_failure(run_cli(with({"--config", json}), dir), {"bad.json", "epochz"});
  }
  {
    SCOPED_TRACE("TOML syntax error");
    const std::string toml = dir + "/syntax.toml";
    std::ofstream(toml) << "model = \n";
    expect_clean_failure(run_cli(with({"--config", toml}), dir), {"syntax.toml"});
  }
  // Nothing was trained.
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/checkpoint.pt"));
}

}  // namespace
}  // namespace nfscale::train
