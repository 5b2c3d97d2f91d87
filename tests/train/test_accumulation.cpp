// test_accumulation.cpp - micro-batch accumulation equals one large batch (double precision): gradients from
// 4 micro-batches of 4 match one batch of 16 to ~1e-12, and so do the weights after SgdAgc steps with AGC and decay.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "nfscale/data/loader.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/step.h"

namespace nfscale::train {
namespace {

constexpr int64_t kClasses = 10, kRes = 17, kChannels = 1;

models::Classifier double_model(uint64_t seed) {
  torch::manual_seed(seed);
  models::ModelConfig mc;
  mc.name = "mini-F0";
  mc.num_classes = kClasses;
  mc.in_channels = kChannels;
  mc.stochastic_depth = 0.0;  // no randomness in the forward pass
  mc.dropout = 0.0;
  models::Classifier m = models::build_model(mc);
  m->to(torch::kFloat64);
  m->train();
  return m;
}

std::vector<optim::ParamSpec> specs_of(models::ClassifierImpl& m) {
  std::vector<optim::ParamSpec> s;
  for (auto& p : m.param_info()) s.push_back({p.name, p.param, p.weight_decay, p.agc});
  return s;
}

// A synthetic batch of `n` rows in double: images [n, 1, R, R] ~ N(0,1), soft targets [n, K] (label smoothing 0.1
// on random labels, plus a random mixing partner so the targets are genuinely soft).
data::Batch synthetic_batch(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  data::Batch b;
  b.images = torch::randn({n, kChannels, kRes, kRes}, gen, torch::dtype(torch::kFloat64));  // [n,1,R,R]
  b.labels = torch::randint(kClasses, {n}, gen, torch::dtype(torch::kInt64));              // [n]
  auto partner = torch::randint(kClasses, {n}, gen, torch::dtype(torch::kInt64));          // [n]
  auto lam = torch::rand({n, 1}, gen, torch::dtype(torch::kFloat64));                       // [n,1]
  auto oh = torch::one_hot(b.labels, kClasses).to(torch::kFloat64);                          // [n,K]
  auto oh2 = torch::one_hot(partner, kClasses).to(torch::kFloat64);                          // [n,K]
  b.targets = (lam * oh + (1 - lam) * oh2) * 0.9 + 0.1 / kClasses;                           // [n,K], rows sum to 1
  return b;
}

// Splits rows [0, n) of `big` into micro-batches of `micro` rows.
std::vector<data::Batch> split(const data::Batch& big, int64_t micro) {
  std::vector<data::Batch> out;
  for (int64_t s = 0; s < big.size(); s += micro) {
    data::Batch b;
    b.images = big.images.narrow(0, s, micro);
    b.targets = big.targets.narrow(0, s, micro);
    b.labels = big.labels.narrow(0, s, micro);
    out.push_back(b);
  }
  return out;
}

// max |a - b| / (1 + max |b|) over one tensor.
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / (1.0 + b.abs().max().item<double>());
}

TEST(Accumulation, FourMicroBatchesOfFourEqualOneBatchOfSixteen) {
  auto big_model = double_model(7), acc_model = double_model(7);
  auto big_specs = specs_of(*big_model), acc_specs = specs_of(*acc_model);
  ASSERT_EQ(big_specs.size(), acc_specs.size());
  for (size_t i = 0; i < big_specs.size(); ++i) {
    ASSERT_EQ(big_specs[i].param.scalar_type(), torch::kFloat64) << big_specs[i].name;
    ASSERT_TRUE(torch::equal(big_specs[i].param, acc_specs[i].param)) << big_specs[i].name;
  }
  optim::SgdAgcOptions oo;
  oo.weight_decay = 1e-2;  // large enough to matter in the comparison
  oo.agc = true;
  optim::SgdAgc big_opt(big_specs, oo), acc_opt(acc_specs, oo);

  for (int step = 0; step < 2; ++step) {  // two steps: the second also exercises the momentum buffers
    const data::Batch big = synthetic_batch(16, 100 + step);
    const double loss_big = accumulate_gradients(*big_model, {big}, 16, false, false, big_opt);
    const double loss_acc = accumulate_gradients(*acc_model, split(big, 4), 16, false, false, acc_opt);
    ASSERT_TRUE(std::isfinite(loss_big));
    EXPECT_NEAR(loss_acc, loss_big, 1e-12 * std::max(1.0, std::abs(loss_big)));

    // Gradients: every parameter, to ~1e-12 relative to its scale.
    double worst = 0.0, grad_norm = 0.0;
    std::string worst_name;
    for (size_t i = 0; i < big_specs.size(); ++i) {
      const torch::Tensor gb = big_specs[i].param.grad(), ga = acc_specs[i].param.grad();
      ASSERT_TRUE(gb.defined() && ga.defined()) << big_specs[i].name;
      grad_norm += gb.pow(2).sum().item<double>();
      const double d = rel_diff(ga, gb);
      if (d > worst) worst = d, worst_name = big_specs[i].name;
    }
    EXPECT_LT(worst, 1e-12) << "largest gradient mismatch in " << worst_name;
    ASSERT_GT(grad_norm, 0.0);

    // One SgdAgc step each, with a real LR: AGC must actually clip something for the test to cover it.
    const optim::StepStats sb = big_opt.step(0.5), sa = acc_opt.step(0.5);
    EXPECT_GT(sb.units_clipped, 0) << "AGC did not clip any unit; the test would not cover clipping";
    EXPECT_EQ(sa.units_clipped, sb.units_clipped);
    EXPECT_NEAR(sa.grad_norm, sb.grad_norm, 1e-12 * sb.grad_norm);
    worst = 0.0;
    for (size_t i = 0; i < big_specs.size(); ++i) {
      const double d = rel_diff(acc_specs[i].param, big_specs[i].param);
      if (d > worst) worst = d, worst_name = big_specs[i].name;
    }
    EXPECT_LT(worst, 1e-12) << "step " << step << ": largest weight mismatch in " << worst_name;
  }
}

TEST(Accumulation, UnequalMicroBatchesAreWeightedBySize) {
  // 16 rows as 4 + 12: weighting each micro-batch equally (instead of by size/batch) would differ.
  auto a = double_model(3), b = double_model(3);
  auto sa = specs_of(*a), sb = specs_of(*b);
  optim::SgdAgc oa(sa), ob(sb);
  const data::Batch big = synthetic_batch(16, 5);
  std::vector<data::Batch> parts = split(big, 4);
  data::Batch rest;
  rest.images = big.images.narrow(0, 4, 12);
  rest.targets = big.targets.narrow(0, 4, 12);
  const double l1 = accumulate_gradients(*a, {big}, 16, false, false, oa);
  const double l2 = accumulate_gradients(*b, {parts[0], rest}, 16, false, false, ob);
  EXPECT_NEAR(l1, l2, 1e-12 * std::max(1.0, std::abs(l1)));
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_LT(rel_diff(sb[i].param.grad(), sa[i].param.grad()), 1e-12) << sa[i].name;
}

TEST(Accumulation, EveryParameterLeavesWithAGradientEvenIfNoBackwardReachesIt) {
  // accumulate_gradients hands autograd's buffers over (clear_grads) and must then give a zero grad to any
  // parameter the loss does not reach, so that the step still decays it and moves its momentum (as zero_grad did).
  auto m = double_model(5);
  auto specs = specs_of(*m);
  auto stray = torch::ones({3}, torch::kFloat64).requires_grad_(true);  // in the optimiser, not in the model
  specs.push_back({"stray", stray, /*weight_decay=*/true, /*agc=*/false});
  optim::SgdAgc opt(specs);
  for (int step = 0; step < 2; ++step) {  // the second call starts from the handed-over buffers of the first
    accumulate_gradients(*m, split(synthetic_batch(8, 40 + step), 2), 8, false, false, opt);
    for (const auto& s : specs) ASSERT_TRUE(s.param.grad().defined()) << s.name;
    EXPECT_EQ(stray.grad().abs().sum().item<double>(), 0.0);
    EXPECT_GT(specs[0].param.grad().abs().sum().item<double>(), 0.0);
    opt.step(0.1);
  }
  EXPECT_LT(stray.max().item<double>(), 1.0);  // weight decay moved it
}

TEST(Accumulation, SoftCrossEntropyMatchesHandFormula) {
  // logits [2,3], targets [2,3]: loss = -mean_b sum_k t_bk log softmax(z_b)_k, computed by hand.
  auto z = torch::tensor({{1.0, 2.0, 0.5}, {-1.0, 0.0, 3.0}}, torch::kFloat64);
  auto t = torch::tensor({{0.2, 0.7, 0.1}, {0.0, 0.5, 0.5}}, torch::kFloat64);
  double expect = 0.0;
  for (int b = 0; b < 2; ++b) {
    double lse = 0.0;
    for (int k = 0; k < 3; ++k) lse += std::exp(z[b][k].item<double>());
    lse = std::log(lse);
    for (int k = 0; k < 3; ++k) expect -= t[b][k].item<double>() * (z[b][k].item<double>() - lse);
  }
  expect /= 2;
  const torch::Tensor l = soft_cross_entropy(z, t);
  EXPECT_EQ(l.scalar_type(), torch::kFloat64);
  EXPECT_NEAR(l.item<double>(), expect, 1e-14);
  // bf16 logits are computed in fp32.
  EXPECT_EQ(soft_cross_entropy(z.to(torch::kBFloat16), t.to(torch::kFloat32)).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace nfscale::train
