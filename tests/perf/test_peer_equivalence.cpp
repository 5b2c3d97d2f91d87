// test_peer_equivalence.cpp - bench/peer_nfnet.py computes nfscale's network: its layer self-checks pass (each fast
// layer against the plain formula in float64), and on nfscale's own weights and input it returns nfscale's logits
// (float64; to rounding with the var_mean WS, within ~1e-7 with timm's batch_norm WS and its eps).
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "nfscale/models/registry.h"
#include "nfscale/perf/peer_process.h"
#include "nfscale/util/error.h"
#include "nfscale/util/runtime.h"

namespace nfscale::perf {
namespace {

namespace fs = std::filesystem;

const std::string kPeer = std::string(NFSCALE_SOURCE_DIR) + "/bench/peer_nfnet.py";
const std::string kPython = "/usr/bin/python3";

void save_ivalue(const fs::path& path, const c10::IValue& v) {
  const std::vector<char> bytes = torch::pickle_save(v);
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(PeerNfnet, LayerSelfChecksPass) {
  const std::string cmd = kPython + " " + kPeer + " --self-check";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Largest |a - b| over the largest |b| of two [B, K] logit tables.
double relative_gap(const nlohmann::json& a, const torch::Tensor& b) {
  double gap = 0.0, scale = 0.0;
  for (int64_t i = 0; i < b.size(0); ++i)
    for (int64_t k = 0; k < b.size(1); ++k) {
      const double y = b[i][k].item<double>();
      gap = std::max(gap, std::abs(a.at(i).at(k).get<double>() - y));
      scale = std::max(scale, std::abs(y));
    }
  return gap / scale;
}

TEST(PeerNfnet, SameLogitsAsNfscaleOnTheSameWeights) {
  models::ModelConfig mc;
  mc.name = "mini-F0";
  mc.num_classes = 10;
  mc.in_channels = 1;
  torch::manual_seed(3);
  auto model = models::build_model(mc);
  c10::Dict<std::string, at::Tensor> weights;
  {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters()) {  // every parameter away from its init, so each one matters
      const std::string& n = p.key();
      auto& t = p.value();
      if (n.find("skip_gain") != std::string::npos) t.fill_(0.5);
      else if (n.size() > 4 && n.compare(n.size() - 4, 4, "gain") == 0) t.uniform_(0.5, 1.5);
      else if (n.size() > 4 && n.compare(n.size() - 4, 4, "bias") == 0) t.normal_(0.0, 0.1);
    }
    model->to(torch::kDouble);
    for (auto& p : model->named_parameters()) weights.insert(p.key(), p.value().detach().clone());
  }
  model->eval();
  const auto dir = fs::temp_directory_path() / "nfscale_test_perf_equivalence";
  fs::create_directories(dir);
  save_ivalue(dir / "weights.pt", weights);

  auto arch = peer_architecture("mini-F0", 10, 1, 32, 2, 1);
  arch["check_only"] = true;
  PeerProcess peer(kPython, kPeer, arch);
  ASSERT_EQ(peer.ready()["params"].get<int64_t>(), models::count_cost(*model, 32, 1).params);
  for (int64_t res : {32, 17, 23}) {  // even and odd maps: symmetric and asymmetric SAME padding, ceil pooling
    SCOPED_TRACE(res);
    const auto x = torch::randn({2, 1, res, res}, torch::kDouble);  // [B, C, R, R]
    torch::Tensor expected;
    {
      torch::NoGradGuard ng;
      expected = model->forward(x);  // [B, K] float64
    }
    const auto input = dir / ("input" + std::to_string(res) + ".pt");
    save_ivalue(input, x);
    const auto reply = peer.call({{"cmd", "check"}, {"weights", (dir / "weights.pt").string()},
                                  {"input", input.string()}});
    ASSERT_TRUE(reply.contains("logits")) << reply.dump();
    const double vm = relative_gap(reply["logits"]["varmean"], expected);
    const double bn = relative_gap(reply["logits"]["batchnorm"], expected);
    std::printf("  res %lld: peer/nfscale relative logit gap: var_mean WS %.2e, batch_norm WS %.2e\n", (long long)res, vm,
                bn);
    EXPECT_LT(vm, 1e-10);
    EXPECT_LT(bn, 1e-6);  // eps 1e-8 inside the root instead of nfscale's floor at 1e-4
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nfscale::perf

namespace nfscale::perf {
namespace {

TEST(PeerNfnet, FixedSettingIsUsedAndABadOneRefused) {
  auto arch = peer_architecture("mini-F0", 10, 1, 17, 2, 1);
  arch["setting"] = "fp32/nchw/native/varmean";
  {
    PeerProcess peer(kPython, kPeer, arch);
    EXPECT_EQ(peer.ready()["config"]["train"].get<std::string>(), "fp32/nchw/native/varmean");
    EXPECT_EQ(peer.ready()["config"]["infer"].get<std::string>(), "fp32/nchw/native/varmean");
    EXPECT_GT(peer.call({{"cmd", "train"}, {"steps", 1}})["seconds"].get<double>(), 0.0);
  }
  arch["setting"] = "fp16/nchw/native/varmean";
  EXPECT_THROW(PeerProcess(kPython, kPeer, arch), UserError);
}

// The peer runs with nfscale's own malloc thresholds, handed over from their one source (util/runtime.h), and with
// glibc's defaults when nfscale runs without them (NFSCALE_MALLOC_TUNE=0 or RuntimeOptions::tune_malloc = false).
TEST(PeerNfnet, RunsWithNfscalesMallocSettings) {
  auto arch = peer_architecture("mini-F0", 10, 1, 17, 2, 1);
  arch["setting"] = "fp32/nchw/native/varmean";
  RuntimeOptions tuned;
  tuned.mmap_threshold = size_t(96) << 20;  // not the default, so a copy of the default in the peer would fail
  tuned.trim_threshold = size_t(300) << 20;
  configure_runtime(tuned);
  ASSERT_TRUE(malloc_tuning().tuned);
  {
    PeerProcess peer(kPython, kPeer, arch);
    const auto info = peer.call({{"cmd", "info"}});
    ASSERT_TRUE(info["malloc_tuned"].get<bool>()) << info.dump();
    EXPECT_EQ(info["malloc"]["mmap_threshold"].get<size_t>(), size_t(96) << 20);
    EXPECT_EQ(info["malloc"]["trim_threshold"].get<size_t>(), size_t(300) << 20);
  }
  RuntimeOptions off = tuned;
  off.tune_malloc = false;
  configure_runtime(off);
  EXPECT_FALSE(malloc_tuning().tuned);
  {
    PeerProcess peer(kPython, kPeer, arch);
    const auto info = peer.call({{"cmd", "info"}});
    EXPECT_FALSE(info["malloc_tuned"].get<bool>()) << info.dump();
    EXPECT_TRUE(info["malloc"].is_null()) << info.dump();
  }
  configure_runtime({});  // back to the defaults
}

// A malformed hand-over is refused by name, not ignored.
TEST(PeerNfnet, MalformedMallocSettingIsRefused) {
  const std::string cmd = "NFSCALE_PEER_MALLOC=lots " + kPython + " " + kPeer + " '{}' </dev/null 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  EXPECT_NE(::pclose(p), 0);
  EXPECT_NE(out.find("NFSCALE_PEER_MALLOC='lots'"), std::string::npos) << out;
}

}  // namespace
}  // namespace nfscale::perf
