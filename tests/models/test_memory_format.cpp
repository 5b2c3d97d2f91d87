// test_memory_format.cpp - to_channels_last gives canonical channels_last strides (also for 1 channel and 1x1
// maps, where x.contiguous(ChannelsLast) is a no-op), and a 1-channel network fed through it runs channels_last in
// every block, in training (forward and backward) and inference, with the same results as NCHW.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers kCL share names with another test file's).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nfscale/models/fused_ops.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/models/nfnet/nfnet.h"
#include "nfscale/models/registry.h"
#include "models_test_util.h"

namespace nfscale::models {
namespace {

constexpr auto kCL = torch::MemoryFormat::ChannelsLast;

TEST(ToChannelsLast, OneChannelAndOnePixelGetCanonicalStrides) {
  for (auto sizes : {std::vector<int64_t>{3, 1, 5, 4}, std::vector<int64_t>{3, 6, 1, 1}}) {
    auto x = torch::randn(sizes);  // NCHW-contiguous, and (ambiguously) channels_last-contiguous too
    ASSERT_TRUE(x.is_contiguous(kCL));
    EXPECT_NE(x.contiguous(kCL).suggest_memory_format(), kCL);  // the trap this helper exists for
    auto y = to_channels_last(x);
    EXPECT_EQ(y.suggest_memory_format(), kCL);
    EXPECT_EQ(y.stride(1), 1);
    EXPECT_TRUE(torch::equal(y, x));
  }
}

TEST(ToChannelsLast, ReturnsCanonicalInputItselfAndConvertsNchw) {
  auto x = torch::randn({2, 3, 4, 5});
  auto y = to_channels_last(x);
  EXPECT_EQ(y.suggest_memory_format(), kCL);
  EXPECT_TRUE(torch::equal(y, x));
  EXPECT_EQ(to_channels_last(y).data_ptr(), y.data_ptr());  // no copy when already canonical
  EXPECT_THROW(to_channels_last(torch::randn({2, 3})), c10::Error);
}

TEST(ToChannelsLast, OneChannelNetworkRunsChannelsLastInEveryBlock) {
  torch::manual_seed(3);
  ModelConfig cfg;
  cfg.name = "mini-F0";
  cfg.num_classes = 10;
  cfg.in_channels = 1;
  auto net = std::dynamic_pointer_cast<NFNetImpl>(build_model(cfg));
  ASSERT_TRUE(net);
  for (auto& p : net->named_parameters())
    if (p.key().find("skip_gain") != std::string::npos) p.value().data().fill_(0.5);  // branches do real work
  net->eval();  // no dropout: NCHW and channels_last runs must agree
  auto x = torch::randn({4, 1, 32, 32});
  for (bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "fused" : "unfused");
    test::FusedSwitch sw(fused);
    std::vector<torch::Tensor> inputs;
    auto xc = x.clone().requires_grad_(true);
    auto out_cl = net->forward_logged(to_channels_last(x).requires_grad_(true), &inputs);  // [4, 10]
    ASSERT_FALSE(inputs.empty());
    for (size_t i = 0; i < inputs.size(); ++i)
      EXPECT_EQ(inputs[i].suggest_memory_format(), kCL) << "block " << i << " input " << inputs[i].sizes();
    auto out_nchw = net->forward(xc);
    EXPECT_TRUE(torch::allclose(out_cl, out_nchw, 1e-4, 1e-5));
    // Gradients of every parameter agree between the two layouts.
    net->zero_grad();
    out_cl.square().sum().backward();
    std::vector<torch::Tensor> g_cl;
    for (auto& p : net->parameters()) g_cl.push_back(p.grad().clone());
    net->zero_grad();
    out_nchw.square().sum().backward();
    size_t k = 0;
    for (auto& p : net->parameters()) {
      EXPECT_TRUE(torch::allclose(g_cl[k], p.grad(), 1e-3, 1e-5)) << "parameter " << k;
      ++k;
    }
  }
}

}  // namespace
}  // namespace nfscale::models
