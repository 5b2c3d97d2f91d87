// test_cli_dist.cpp - `nfscale train --nproc 2` end to end (real processes, Gloo over loopback): bit-identical run
// to run, equal to one process with the same global batch within the fp32 bound, a crashed rank ends the others
// within 5 s with a clear error, kill -9 of random ranks at random moments then relaunch is bit-identical to an
// uninterrupted run, and a change of world size on resume keeps exactly-once (same weights within the fp32 bound).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "dist_test_util.h"

namespace nfscale::dist {
namespace {
using namespace testing;

// fp32: 2 ranks reduce the two halves' mean gradients and divide by 2, one process sums the micro-batches in one
// order; a few ulps per step. Bound for 24 steps of mini-F0 (measured: 0, the sums happen to round alike).
constexpr double kFp32Bound = 1e-5;

TEST(DistCli, TwoRanksBitIdenticalRunToRunAndEqualToOneProcess) {
  NFSCALE_REQUIRE_BINARY();
  const std::string a = fresh_dir("dist_a"), b = fresh_dir("dist_b"), one = fresh_dir("dist_one");
  const CliResult ra = run_cli(train_args(a, 2), a);
  ASSERT_EQ(ra.code, 0) << ra.err;
  const CliResult rb = run_cli(train_args(b, 2), b);
  ASSERT_EQ(rb.code, 0) << rb.err;
  const CliResult r1 = run_cli(train_args(one, 1), one);
  ASSERT_EQ(r1.code, 0) << r1.err;
  auto wa = weights_of(a), wb = weights_of(b), w1 = weights_of(one);
  std::string first;
  EXPECT_EQ(count_different(*wa, *wb, &first), 0) << "2-rank runs differ; first tensor " << first;
  EXPECT_LT(max_rel_diff(*wa, *w1), kFp32Bound);
  // Rank 0 alone wrote the run dir: one train line per step (24 steps), examples counted globally.
  EXPECT_EQ(train_lines(a), 24u);
  const auto result = nlohmann::json::parse(slurp(a + "/result.json"));
  EXPECT_EQ(result["examples_seen"].get<int64_t>(), 384);
  EXPECT_EQ(result["steps"].get<int64_t>(), 24);
}

// Starts `args` (a --nproc 2 run) and waits until 3 steps are logged; returns the launcher's pid and stores its
// two ranks' pids in `ranks`.
pid_t start_and_wait_for_steps(const std::vector<std::string>& args, const std::string& dir,
                               std::vector<pid_t>& ranks) {
  const pid_t launcher = spawn_cli(args, dir + "/out", dir + "/err");
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (launcher > 0 && train_lines(dir) < 3 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ranks = children_of(launcher);
  return launcher;
}

TEST(DistCli, ACrashedRankEndsTheOthersWithinSecondsWithAClearError) {
  NFSCALE_REQUIRE_BINARY();
  const std::string dir = fresh_dir("dist_crash");
  std::vector<pid_t> ranks;
  const pid_t launcher = start_and_wait_for_steps(train_args(dir, 2, 40.0), dir, ranks);
  ASSERT_GT(launcher, 0);
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(ranks[1], SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  const int code = wait_status(launcher);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(code, 0);
  EXPECT_LT(seconds, 5.0);
  std::printf("[ info ] the launcher ended %.3f s after the kill -9 of rank 1 (exit code %d)\n", seconds, code);
  const std::string err = slurp(dir + "/err");
  EXPECT_NE(err.find("[launch] rank 1 was killed by signal 9"), std::string::npos) << err;
  EXPECT_NE(err.find("failed on rank 0 of 2"), std::string::npos) << err;
  for (pid_t r : ranks) EXPECT_FALSE(::kill(r, 0) == 0) << "rank pid " << r << " survived";
}

TEST(DistCli, KillNineOfRandomRanksThenRelaunchIsBitIdentical) {
  NFSCALE_REQUIRE_BINARY();
  const std::string ref = fresh_dir("dist_ref"), dir = fresh_dir("dist_kill");
  ASSERT_EQ(run_cli(train_args(ref, 2), ref).code, 0);
  std::mt19937 rng(12345);
  int kills = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const size_t target = train_lines(dir) + 1 + rng() % 4;  // 1-4 more steps, then kill a random rank
    const pid_t launcher = spawn_cli(train_args(dir, 2, 1.0, true), dir + "/out", dir + "/err");
    ASSERT_GT(launcher, 0);
    int code = 0;
    bool exited = false;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (train_lines(dir) < target && std::chrono::steady_clock::now() < give_up &&
           !(exited = try_wait(launcher, &code)))
      std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 3000));
    if (exited) break;  // finished before the kill
    const std::vector<pid_t> ranks = children_of(launcher);
    if (ranks.empty()) break;
    ::kill(ranks[rng() % ranks.size()], SIGKILL);
    EXPECT_NE(wait_status(launcher), 0);
    ++kills;
  }
  EXPECT_GE(kills, 3) << "the kills did not land inside the run";
  const CliResult last = run_cli(train_args(dir, 2, 1.0, true), dir);
  ASSERT_EQ(last.code, 0) << last.err;
  auto wr = weights_of(ref), wk = weights_of(dir);
  std::string first;
  EXPECT_EQ(count_different(*wr, *wk, &first), 0) << "first differing tensor " << first;
}

TEST(DistCli, ResumingWithAnotherWorldSizeKeepsExactlyOnce) {
  NFSCALE_REQUIRE_BINARY();
  const std::string ref = fresh_dir("dist_ws_ref"), dir = fresh_dir("dist_ws");
  ASSERT_EQ(run_cli(train_args(ref, 2), ref).code, 0);
  // Two ranks for ~10 steps, stopped by SIGINT to the launcher (forwarded; the ranks stop together, rank 0 saves).
  const pid_t launcher = spawn_cli(train_args(dir, 2), dir + "/out", dir + "/err");
  ASSERT_GT(launcher, 0);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (train_lines(dir) < 10 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(launcher, SIGINT);
  EXPECT_EQ(wait_status(launcher), 130) << slurp(dir + "/err");
  const auto ckpt_steps = train_lines(dir);
  EXPECT_GE(ckpt_steps, 10u);
  EXPECT_LT(ckpt_steps, 24u) << "the run ended before the interrupt";
  // ...then one process to the end: the position is a global example count, so the single rank continues exactly
  // where the two stopped (same micro-batches, same dropout seeds).
  const CliResult r = run_cli(train_args(dir, 1, 1.0, true), dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto result = nlohmann::json::parse(slurp(dir + "/result.json"));
  EXPECT_EQ(result["examples_seen"].get<int64_t>(), 384);
  auto wr = weights_of(ref), wd = weights_of(dir);
  EXPECT_LT(max_rel_diff(*wd, *wr), kFp32Bound);
}

// kill -9 of the launcher itself: its ranks get SIGTERM (parent-death signal), stop together and rank 0 checkpoints.
TEST(DistCli, KillingTheLauncherEndsItsRanks) {
  NFSCALE_REQUIRE_BINARY();
  const std::string dir = fresh_dir("dist_launcher_kill");
  std::vector<pid_t> ranks;
  const pid_t launcher = start_and_wait_for_steps(train_args(dir, 2, 40.0), dir, ranks);
  ASSERT_GT(launcher, 0);
  ASSERT_EQ(ranks.size(), 2u);
  // Each rank ignores SIGPIPE (a peer gone first is an error it reports, not a silent death): bit SIGPIPE - 1 of the
  // SigIgn mask in /proc/<pid>/status.
  for (pid_t r : ranks) {
    const std::string status = slurp("/proc/" + std::to_string(r) + "/status");
    const size_t at = status.find("SigIgn:");
    ASSERT_NE(at, std::string::npos) << status;
    const unsigned long long ignored = std::stoull(status.substr(at + 7), nullptr, 16);
    EXPECT_TRUE(ignored & (1ull << (SIGPIPE - 1))) << "rank " << r << " SigIgn " << std::hex << ignored;
  }
  ::kill(launcher, SIGKILL);
  EXPECT_EQ(wait_status(launcher), 1000 + SIGKILL);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto running = [](pid_t p) {  // exists and is not a zombie waiting for a (container) init to reap it
    const std::string stat = slurp("/proc/" + std::to_string(p) + "/stat");
    const size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
  };
  auto any_alive = [&] { return running(ranks[0]) || running(ranks[1]); };
  while (any_alive() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(any_alive()) << "a rank outlived its launcher by 10 s";
  EXPECT_NE(slurp(dir + "/err").find("[train] stopped after"), std::string::npos) << slurp(dir + "/err");
}

// A hung rank (SIGSTOP) is noticed at --dist-timeout (2 s here), not after Gloo's 30-minute default.
TEST(DistCli, AHungRankEndsTheRunAtTheDistTimeout) {
  NFSCALE_REQUIRE_BINARY();
  const std::string dir = fresh_dir("dist_hang");
  std::vector<pid_t> ranks;
  const pid_t launcher = start_and_wait_for_steps(with(train_args(dir, 2, 40.0), "--dist-timeout", "2"), dir, ranks);
  ASSERT_GT(launcher, 0);
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(ranks[1], SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  const int code = wait_status(launcher);  // rank 0 times out; the launcher then kills the stopped rank
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(code, 0);
  EXPECT_GT(seconds, 1.5);
  EXPECT_LT(seconds, 2.0 + 5.0 + 3.0);  // timeout + the launcher's grace before SIGKILL + slack
  const std::string err = slurp(dir + "/err");
  EXPECT_NE(err.find("failed on rank 0 of 2"), std::string::npos) << err;
  EXPECT_NE(err.find("--dist-timeout"), std::string::npos) << err;
  std::printf("[ info ] the launcher ended %.3f s after rank 1 was stopped (--dist-timeout 2)\n", seconds);
}

TEST(DistCli, BadDistributedFlagsAndEnvironmentNameTheFix) {
  NFSCALE_REQUIRE_BINARY();
  const std::string dir = fresh_dir("dist_bad");
  auto err_of = [&](std::vector<std::pair<std::string, std::string>> flags) {
    std::vector<std::string> a = train_args(dir, 1);
    for (const auto& [flag, value] : flags) a = with(a, flag, value);
    const CliResult r = run_cli(a, dir);
    EXPECT_NE(r.code, 0);
    return r.err;
  };
  EXPECT_NE(err_of({{"--nproc", "0"}}).find("--nproc 0: need 1..256"), std::string::npos);
  EXPECT_NE(err_of({{"--dist-timeout", "-1"}}).find("--dist-timeout"), std::string::npos);
  EXPECT_NE(err_of({{"--dist-startup-timeout", "0"}}).find("--dist-startup-timeout"), std::string::npos);
  // Global batch 16 over 2 ranks with --micro-batch 16 per rank does not divide.
  EXPECT_NE(err_of({{"--nproc", "2"}, {"--micro-batch", "16"}}).find("must be a multiple of ranks (2)"),
            std::string::npos);
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "0", 1);
  ::setenv("MASTER_PORT", "29555", 1);
  const std::string both = err_of({{"--nproc", "2"}});
  ::unsetenv("RANK");
  const std::string no_rank = err_of({});
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("MASTER_PORT");
  EXPECT_NE(both.find("WORLD_SIZE is set"), std::string::npos) << both;
  EXPECT_NE(no_rank.find("RANK is not"), std::string::npos) << no_rank;
}

}  // namespace
}  // namespace nfscale::dist
