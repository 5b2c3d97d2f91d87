// test_equivalence.cpp - data parallelism is the same optimisation as one process (double precision): two ranks
// (two threads, each with its own model, optimiser and C10dCommunicator over loopback) with half of each global
// batch equal one process with the whole batch to 1e-10 after several steps, for SGD + AGC on an NFNet and AdamW
// (global-norm clipping) on a ViT; plus the communicator helpers (mean over ranks of bf16/fp32/fp64 tensors, vote).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <mutex>
#include <thread>

#include "nfscale/data/loader.h"
#include "nfscale/dist/c10d_communicator.h"
#include "nfscale/dist/launcher.h"
#include "nfscale/dist/local_communicator.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/adamw.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/step.h"
#include "nfscale/util/error.h"

namespace nfscale::dist {
namespace {

constexpr int64_t kClasses = 10, kWorld = 2;

models::Classifier double_model(const std::string& name, int64_t res) {
  // The ranks are threads of one process: the global generator must not be drawn from by two at once.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  torch::manual_seed(11);
  models::ModelConfig mc;
  mc.name = name;
  mc.num_classes = kClasses;
  mc.in_channels = 1;
  mc.resolution = res;
  mc.stochastic_depth = 0.0;
  mc.dropout = 0.0;
  models::Classifier m = models::build_model(mc);
  m->to(torch::kFloat64);
  m->train();
  return m;
}

// Global micro-batch j of step `step`: images [micro, 1, R, R] ~ N(0,1) (fp64), soft targets [micro, K].
data::Batch micro_batch(int64_t step, int64_t j, int64_t micro, int64_t res) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(uint64_t(1000 * step + j + 1));
  data::Batch b;
  b.images = torch::randn({micro, 1, res, res}, gen, torch::dtype(torch::kFloat64));  // [micro,1,R,R]
  b.labels = torch::randint(kClasses, {micro}, gen, torch::dtype(torch::kInt64));    // [micro]
  b.targets = torch::one_hot(b.labels, kClasses).to(torch::kFloat64) * 0.9 + 0.01;  // [micro,K]
  return b;
}

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<optim::ParamSpec>)>;

// Trains `steps` steps of global batch n_micro x micro on `comm`'s share (global micro-batch j = i x W + rank,
// as the trainer deals them) and returns the final parameters.
std::vector<torch::Tensor> train(Communicator& comm, const std::string& name, int64_t res, const MakeOpt& make_opt,
                                 int64_t steps, int64_t n_micro, int64_t micro, double lr) {
  auto model = double_model(name, res);
  auto opt = make_opt(model->param_info());
  train::broadcast_model(comm, *model);
  const int64_t W = comm.world_size();
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<data::Batch> mine;
    for (int64_t i = 0; i < n_micro / W; ++i) mine.push_back(micro_batch(s, i * W + comm.rank(), micro, res));
    train::accumulate_gradients(*model, mine, n_micro * micro / W, false, false, *opt);
    train::all_reduce_gradients(comm, *opt);
    opt->step(lr);
  }
  std::vector<torch::Tensor> out;
  for (auto& p : model->parameters()) out.push_back(p.detach().clone());
  return out;
}

// Runs `fn(comm)` on kWorld threads, each a rank of a fresh Gloo group on loopback; returns rank 0's result.
template <typename Fn>
auto on_two_ranks(Fn fn) {
  const int port = free_tcp_port();
  decltype(fn(std::declval<Communicator&>())) results[kWorld];
  std::string errors[kWorld];
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r)
    threads.emplace_back([&, r] {
      try {
        C10dOptions o;
        o.master_port = port;
        o.rank = r;
        o.world_size = kWorld;
        o.timeout = std::chrono::milliseconds(30000);
        o.startup_timeout = std::chrono::milliseconds(30000);
        o.interface = "lo";
        C10dCommunicator comm(o);
        results[r] = fn(comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return results[0];
}

double max_rel_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / (1.0 + b[i].abs().max().item<double>()));
  return worst;
}

void expect_two_ranks_equal_one(const std::string& name, int64_t res, const MakeOpt& make_opt, double lr) {
  const int64_t steps = 3, n_micro = 4, micro = 3;  // global batch 12: 2 ranks x 2 micro-batches x 3
  LocalCommunicator local;
  const auto one = train(local, name, res, make_opt, steps, n_micro, micro, lr);
  const auto two = on_two_ranks([&](Communicator& c) { return train(c, name, res, make_opt, steps, n_micro, micro, lr); });
  ASSERT_EQ(two.size(), one.size());
  const auto init = [&] {
    auto m = double_model(name, res);
    std::vector<torch::Tensor> p;
    for (auto& t : m->parameters()) p.push_back(t.detach().clone());
    return p;
  }();
  EXPECT_GT(max_rel_diff(one, init), 1e-4) << "the steps did not move the weights";
  EXPECT_LT(max_rel_diff(two, one), 1e-10) << name;
}

TEST(DataParallel, TwoRanksEqualOneProcessFp64SgdAgcNfnet) {
  expect_two_ranks_equal_one("mini-F0", 17, [](std::vector<optim::ParamSpec> s) {
    optim::SgdAgcOptions o;
    o.weight_decay = 1e-2;
    o.agc = true;
    return std::make_unique<optim::SgdAgc>(std::move(s), o);
  }, 0.5);
}

TEST(DataParallel, TwoRanksEqualOneProcessFp64AdamWVit) {
  expect_two_ranks_equal_one("mini-ViT-Ti", 16, [](std::vector<optim::ParamSpec> s) {
    optim::AdamWOptions o;
    o.peak_lr = 1e-3;
    o.clip_global_norm = 0.05;  // small enough to clip: the clip must see the all-reduced gradient
    return std::make_unique<optim::AdamW>(std::move(s), o);
  }, 1e-3);
}

TEST(Communicator, MeanOverRanksOfMixedDtypesAndTheVote) {
  const auto out = on_two_ranks([](Communicator& c) {
    const double r = c.rank();
    std::vector<at::Tensor> t{torch::full({3}, r + 1, torch::kFloat64), torch::full({2, 2}, 2 * r, torch::kFloat32),
                              torch::full({5}, 4 * r, torch::kBFloat16), at::Tensor()};
    all_reduce_mean(c, t);
    const bool any_true = c.any(c.rank() == 1), any_false = c.any(false);
    std::vector<double> v{t[0][0].item<double>(), t[1][1][1].item<double>(), t[2][4].item<double>(),
                          double(t[2].scalar_type() == at::kBFloat16), double(any_true), double(any_false)};
    return v;
  });
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0], 1.5);  // mean of 1 and 2
  EXPECT_EQ(out[1], 1.0);  // mean of 0 and 2
  EXPECT_EQ(out[2], 2.0);  // bf16 travels as fp32 and comes back as bf16
  EXPECT_EQ(out[3], 1.0);
  EXPECT_EQ(out[4], 1.0);
  EXPECT_EQ(out[5], 0.0);
}

// The backends say where their buffers live; asking for NCCL in a build without it is a named error, not a crash.
TEST(Communicator, BackendsNameTheirDeviceAndNcclNeedsACudaBuild) {
  LocalCommunicator local;
  EXPECT_EQ(local.backend(), "local");
  EXPECT_TRUE(local.device().is_cpu());
  const auto gloo = on_two_ranks([](Communicator& c) {
    return std::vector<double>{double(c.backend() == "gloo"), double(c.device().is_cpu())};
  });
  EXPECT_EQ(gloo, (std::vector<double>{1.0, 1.0}));
  if (nccl_available()) GTEST_SKIP() << "this LibTorch has NCCL; the refusal is for CPU builds";
  C10dOptions o;
  o.backend = Backend::Nccl;
  o.master_port = 1;  // never reached: the refusal comes before the store
  try {
    C10dCommunicator c(o);
    FAIL() << "an NCCL communicator was created without NCCL";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("USE_C10D_NCCL"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::dist
