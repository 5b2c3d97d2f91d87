// test_sam.cpp - SAM and ASAM on a two-layer network in double precision: the perturbation, the second gradient
// and the final SGD+AGC update equal the formulas computed by hand with autograd (independently of the library's
// in-place code); restore() is bit-exact; misuse fails loudly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nfscale/optim/sam.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/util/error.h"
#include "optim_test_util.h"

namespace nfscale::optim {
namespace {

using test::agc_reference;
using test::bit_equal;
using test::randn_double;
using test::spec;

// x [6,3] -> linear(3->4) -> tanh -> linear(4->2); mean squared error against y [6,2].
torch::Tensor loss_fn(const std::vector<torch::Tensor>& w, const torch::Tensor& x, const torch::Tensor& y) {
  torch::Tensor h = torch::tanh(torch::matmul(x, w[0].t()) + w[1]);  // [6,4]
  torch::Tensor out = torch::matmul(h, w[2].t()) + w[3];             // [6,2]
  return (out - y).square().mean();
}

std::vector<torch::Tensor> grads_at(const std::vector<torch::Tensor>& w, const torch::Tensor& x,
                                    const torch::Tensor& y) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : w) leaves.push_back(t.detach().clone().requires_grad_(true));
  return torch::autograd::grad({loss_fn(leaves, x, y)}, leaves);
}

struct Net {
  std::vector<ParamSpec> specs;
  torch::Tensor x = randn_double({6, 3}, 51), y = randn_double({6, 2}, 52);
  Net() {
    specs = {spec("fc1.weight", randn_double({4, 3}, 53, 0.7), true, true),
             spec("fc1.bias", randn_double({4}, 54, 0.1), false, true),
             spec("fc2.weight", randn_double({2, 4}, 55, 0.7), true, false),  // classifier: no AGC
             spec("fc2.bias", torch::zeros({2}, torch::kDouble), false, true)};
  }
  std::vector<torch::Tensor> values() const {
    std::vector<torch::Tensor> v;
    for (const auto& s : specs) v.push_back(s.param.detach().clone());
    return v;
  }
  void backward() {
    for (auto& s : specs)
      if (s.param.grad().defined()) s.param.mutable_grad().zero_();
    std::vector<torch::Tensor> p;
    for (auto& s : specs) p.push_back(s.param);
    loss_fn(p, x, y).backward();
  }
};

void check_sam_matches_formula(bool adaptive) {
  Net net;
  SamOptions so;
  so.adaptive = adaptive;
  so.rho = adaptive ? 0.5 : 0.05;
  SgdAgcOptions go;
  go.weight_decay = 0.01;
  go.agc_options.clip = 0.05;  // clips some units of these fixtures
  Sam sam(net.specs, so);
  SgdAgc sgd(net.specs, go);
  std::vector<torch::Tensor> w = net.values(), buf;
  for (const auto& t : w) buf.push_back(torch::zeros_like(t));
  const double lr = 0.3;

  for (int step = 0; step < 3; ++step) {
    // Hand computation of the whole SAM step from the reference formulas.
    std::vector<torch::Tensor> g1 = grads_at(w, net.x, net.y);
    std::vector<torch::Tensor> tg(w.size()), t2(w.size());
    double sq = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const bool scaled = adaptive && net.specs[i].weight_decay;
      torch::Tensor tw = scaled ? w[i].abs() + so.asam_eta : torch::ones_like(w[i]);
      tg[i] = tw * g1[i];
      t2[i] = tw * tw;
      sq += tg[i].square().sum().item<double>();
    }
    const double norm = std::sqrt(sq);
    std::vector<torch::Tensor> e(w.size()), w_pert(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      e[i] = so.rho * t2[i] * g1[i] / (norm + 1e-12);
      w_pert[i] = w[i] + e[i];
    }
    std::vector<torch::Tensor> g2 = grads_at(w_pert, net.x, net.y);

    // The library, called as a trainer would.
    net.backward();
    const double got_norm = sam.perturb();
    EXPECT_NEAR(got_norm, norm, 1e-14 * norm);
    for (size_t i = 0; i < w.size(); ++i)
      EXPECT_TRUE(torch::allclose(net.specs[i].param, w_pert[i], 1e-14, 1e-16)) << net.specs[i].name;
    net.backward();  // second gradient at w + e
    for (size_t i = 0; i < w.size(); ++i)
      EXPECT_TRUE(torch::allclose(net.specs[i].param.grad(), g2[i], 1e-12, 1e-14)) << net.specs[i].name;
    sam.restore();
    for (size_t i = 0; i < w.size(); ++i) EXPECT_TRUE(bit_equal(net.specs[i].param, w[i])) << net.specs[i].name;
    sgd.step(lr);

    // Reference base step on the second gradient: AGC -> weight decay -> Nesterov momentum.
    for (size_t i = 0; i < w.size(); ++i) {
      torch::Tensor g = g2[i];
      if (net.specs[i].agc) g = agc_reference(g, w[i], go.agc_options.clip);
      if (net.specs[i].weight_decay) g = g + go.weight_decay * w[i];
      buf[i] = go.momentum * buf[i] + g;
      w[i] = w[i] - lr * (g + go.momentum * buf[i]);
      EXPECT_TRUE(torch::allclose(net.specs[i].param, w[i], 1e-12, 1e-14)) << net.specs[i].name << " " << step;
    }
    // Exact bookkeeping from here on, so later steps test the formulas rather than accumulated rounding.
    w = net.values();
  }
}

TEST(Sam, PlainSamStepMatchesHandFormula) { check_sam_matches_formula(false); }

TEST(Sam, AdaptiveSamStepMatchesHandFormula) { check_sam_matches_formula(true); }

TEST(Sam, PerturbationHasNormRho) {
  Net net;
  net.backward();
  const auto w0 = net.values();
  Sam sam(net.specs, SamOptions{});
  sam.perturb();
  double sq = 0;
  for (size_t i = 0; i < w0.size(); ++i) sq += (net.specs[i].param.detach() - w0[i]).square().sum().item<double>();
  EXPECT_NEAR(std::sqrt(sq), 0.05, 1e-12);  // (w + e) - w loses ~1e-16 per element of w ~ 1
  sam.restore();
}

TEST(Sam, ParamsWithoutGradAreNotPerturbedAndMisuseThrows) {
  Net net;
  std::vector<torch::Tensor> p;
  for (auto& s : net.specs) p.push_back(s.param);
  // Only fc2.* get gradients.
  {
    std::vector<torch::Tensor> w = {p[0].detach(), p[1].detach(), p[2], p[3]};
    loss_fn(w, net.x, net.y).backward();
  }
  ASSERT_FALSE(net.specs[0].param.grad().defined());
  const auto w0 = net.values();
  Sam sam(net.specs, SamOptions{});
  EXPECT_THROW(sam.restore(), UserError);
  sam.perturb();
  EXPECT_TRUE(sam.perturbed());
  EXPECT_TRUE(bit_equal(net.specs[0].param, w0[0]));
  EXPECT_FALSE(bit_equal(net.specs[2].param, w0[2]));
  EXPECT_THROW(sam.perturb(), UserError);
  sam.restore();
  for (size_t i = 0; i < w0.size(); ++i) EXPECT_TRUE(bit_equal(net.specs[i].param, w0[i]));
}

TEST(Sam, BadOptionsThrow) {
  Net net;
  EXPECT_THROW(Sam(net.specs, SamOptions{0.0}), UserError);
  EXPECT_THROW(Sam(net.specs, SamOptions{0.05, true, -1.0}), UserError);
  EXPECT_THROW(Sam(net.specs, SamOptions{0.05, false, 0.01, 0.0}), UserError);
}

}  // namespace
}  // namespace nfscale::optim
