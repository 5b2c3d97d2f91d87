// test_bench_run.cpp - the bench leaves the fused-ops switch as it found it (NFSCALE_FUSED=0 survives a bench run),
// times what the switch says, and fails cleanly on a bad peer (wrong parameter count, early exit, garbage).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nfscale/models/fused_ops.h"
#include "nfscale/perf/bench_run.h"
#include "nfscale/perf/peer_process.h"
#include "nfscale/util/error.h"
#include "bench_test_util.h"

namespace nfscale::perf {
namespace {

namespace fs = std::filesystem;

using testing::tiny_options;

TEST(BenchRun, KeepsTheFusedSwitchOffAndTimesTheUnfusedCode) {
  const bool before = models::fused_ops_enabled();
  models::set_fused_ops(false);
  const nlohmann::json r = run_bench(tiny_options());
  EXPECT_FALSE(models::fused_ops_enabled());  // the bug: the bench 'restored' the self-check result (true)
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0]["fused_ops"].get<bool>());
  EXPECT_TRUE(r[0]["nfscale_unfused"]["train_img_s"].empty());  // nothing separate to compare against
  EXPECT_EQ(r[0]["nfscale"]["train_img_s"].size(), 1u);
  EXPECT_GT(r[0]["nfscale"]["train_img_s"][0].get<double>(), 0.0);
  models::set_fused_ops(before);
}

TEST(BenchRun, KeepsTheFusedSwitchOnAndTimesBoth) {
  if (!models::fused_self_check()) GTEST_SKIP() << "fused kernels fail their self-check on this CPU";
  const bool before = models::fused_ops_enabled();
  models::set_fused_ops(true);
  const nlohmann::json r = run_bench(tiny_options());
  EXPECT_TRUE(models::fused_ops_enabled());
  EXPECT_TRUE(r[0]["fused_ops"].get<bool>());
  EXPECT_EQ(r[0]["nfscale_unfused"]["train_img_s"].size(), 1u);
  models::set_fused_ops(before);
}

// --profile prints two per-op tables, the training step's (with backward ops) and the inference batch's (without).
TEST(BenchRun, ProfilesATrainingStepAndAnInferenceBatch) {
  BenchOptions o = tiny_options();
  o.profile_rows = 400;  // every op
  o.unfused = false;
  ::testing::internal::CaptureStdout();
  run_bench(o);
  const std::string out = ::testing::internal::GetCapturedStdout();
  const size_t train = out.find("per-op profile of one nfscale training step");
  const size_t infer = out.find("per-op profile of one nfscale inference batch");
  ASSERT_NE(train, std::string::npos) << out;
  ASSERT_NE(infer, std::string::npos) << out;
  ASSERT_LT(train, infer);
  const std::string train_table = out.substr(train, infer - train), infer_table = out.substr(infer, out.find("\n\n", infer) - infer);
  EXPECT_NE(train_table.find("Backward"), std::string::npos) << train_table;
  EXPECT_NE(infer_table.find("conv"), std::string::npos) << infer_table;
  EXPECT_EQ(infer_table.find("Backward"), std::string::npos) << infer_table;
}

// NFSCALE_FUSED=0 itself (read once per process, on the first query): in a fresh process (threadsafe death-test
// style re-executes the binary), set it, bench, and exit with the switch's state.
TEST(BenchRunDeathTest, EnvironmentSwitchSurvivesTheBench) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("NFSCALE_FUSED", "0", 1);
        run_bench(tiny_options());
        std::exit(models::fused_ops_enabled() ? 3 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A fake peer: a shell script run by /bin/sh in place of python.
std::string fake_peer(const std::string& name, const std::string& body) {
  const fs::path p = fs::temp_directory_path() / ("nfscale_test_perf_" + name + ".sh");
  std::ofstream(p) << body;
  return p.string();
}

TEST(PeerProcess, SpeaksJsonLines) {
  const auto script = fake_peer("ok", "echo '{\"ready\":true,\"params\":7}'\n"
                                      "while read l; do echo '{\"seconds\":0.25}'; done\n");
  PeerProcess peer("/bin/sh", script, {{"x", 1}});
  EXPECT_EQ(peer.ready()["params"].get<int>(), 7);
  EXPECT_DOUBLE_EQ(peer.call({{"cmd", "train"}, {"steps", 1}})["seconds"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(peer.call({{"cmd", "infer"}, {"steps", 1}})["seconds"].get<double>(), 0.25);
}

TEST(PeerProcess, BadPeersAreUserErrors) {
  const auto early = fake_peer("early", "exit 0\n");
  EXPECT_THROW(PeerProcess("/bin/sh", early, {}), UserError);
  const auto garbage = fake_peer("garbage", "echo hello\n");
  EXPECT_THROW(PeerProcess("/bin/sh", garbage, {}), UserError);
  EXPECT_THROW(PeerProcess("/nonexistent/python3", early, {}), UserError);
  const auto dies = fake_peer("dies", "echo '{\"ready\":true}'\nread l\n");  // answers nothing to the first command
  PeerProcess peer("/bin/sh", dies, {});
  EXPECT_THROW(peer.call({{"cmd", "train"}}), UserError);
  EXPECT_THROW(peer.call({{"cmd", "train"}}), UserError);  // writing to a closed pipe: no SIGPIPE
}

TEST(PeerProcess, ParameterCountMismatchIsRefused) {
  const auto script = fake_peer("params", "echo '{\"ready\":true,\"params\":7}'\nwhile read l; do :; done\n");
  BenchOptions o = tiny_options();
  o.python = "/bin/sh";
  try {
    run_case(o, parse_case("mini-F0:17:2"), script, 1);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("architectures differ"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::perf
