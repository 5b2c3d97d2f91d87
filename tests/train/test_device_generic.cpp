// test_device_generic.cpp - the device-generic path (what any non-CPU device runs: ATen ops, no fused CPU kernels,
// no pointwise-GEMM route, no one-pass optimiser update), forced on the CPU by turning the fused routes off, against
// the fused CPU path: training, evaluation and prediction agree to fp32 rounding.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "nfscale/models/fused_ops.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"
#include "train_test_util.h"

namespace nfscale::train {
namespace {
using namespace testing;

struct FusedRoutes {
  bool before = models::fused_ops_enabled();
  explicit FusedRoutes(bool on) { models::set_fused_ops(on); }
  ~FusedRoutes() { models::set_fused_ops(before); }
};

double max_abs_diff(models::ClassifierImpl& a, models::ClassifierImpl& b) {
  double m = 0.0;
  auto pb = b.named_parameters(true);
  for (auto& item : a.named_parameters(true))
    m = std::max(m, (item.value() - pb[item.key()]).abs().max().item<double>());
  return m;
}

TEST(DeviceGeneric, TrainEvalPredictMatchTheFusedCpuPath) {
  if (!models::fused_ops_enabled()) GTEST_SKIP() << "fused CPU kernels unavailable here: " << models::fused_ops_status();
  TrainResult r[2];
  std::string dirs[2];
  for (int generic = 0; generic < 2; ++generic) {
    FusedRoutes routes(generic == 0);
    dirs[generic] = fresh_dir(generic ? "generic" : "fused");
    TrainConfig c = small_config(dirs[generic]);
    c.holdout = 32;
    c.device = "cpu";
    r[generic] = run_training(c, false);
    ASSERT_TRUE(r[generic].completed);
  }
  // Training: same steps, weights equal up to fp32 rounding differences accumulated over 4 steps.
  EXPECT_EQ(r[0].steps, r[1].steps);
  auto a = digits_model(), b = digits_model();
  load_weights(r[0].weights_path, *a);
  load_weights(r[1].weights_path, *b);
  const double w_diff = max_abs_diff(*a, *b);
  EXPECT_LT(w_diff, 1e-4) << "weights after training, fused vs generic";
  EXPECT_GT(w_diff, 0.0) << "the two paths were not different code (is the switch working?)";
  // Evaluation: the held-out loss and error of both runs.
  EXPECT_NEAR(r[0].final_eval.holdout.loss, r[1].final_eval.holdout.loss, 1e-4);
  EXPECT_EQ(r[0].final_eval.holdout.examples, r[1].final_eval.holdout.examples);
  // Prediction: one set of weights, forward through each path.
  torch::manual_seed(2);
  const auto x = torch::randn({8, 1, 17, 17});
  a->eval();
  torch::NoGradGuard ng;
  torch::Tensor y[2];
  for (int generic = 0; generic < 2; ++generic) {
    FusedRoutes routes(generic == 0);
    y[generic] = a->forward(x);
  }
  EXPECT_LT((y[0] - y[1]).abs().max().item<double>(), 1e-5);
}

TEST(DeviceGeneric, DeviceFlagIsCheckedWithANamedError) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  auto msg = [](const std::string& text) {
    try {
      parse_device(text, "--device");
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg("gpu").find("unknown device"), std::string::npos);
  EXPECT_NE(msg("cuda:x").find("device index"), std::string::npos);
  if (!torch::cuda::is_available()) {
    EXPECT_NE(msg("cuda").find("no CUDA device"), std::string::npos);
  }
}

}  // namespace
}  // namespace nfscale::train
