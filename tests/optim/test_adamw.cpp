// test_adamw.cpp - AdamW and global-norm clipping against their formulas written out independently (element loops in
// double): both weight-decay conventions, decay only on flagged params, clipping on and off, step statistics,
// bit-exact save/load resume, the optimiser factory, and failure paths.
#include <gtest/gtest.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "nfscale/optim/adamw.h"
#include "nfscale/optim/clip.h"
#include "nfscale/optim/optimizer_factory.h"
#include "nfscale/util/error.h"
#include "optim_test_util.h"

namespace nfscale::optim {
namespace {

using test::bit_equal;
using test::load_from_string;
using test::save_to_string;
using test::randn_double;
using test::spec;

// A weight matrix (decayed), a bias and a LayerNorm scale (not decayed).
std::vector<ParamSpec> make_params() {
  return {spec("fc.weight", randn_double({4, 3}, 21, 0.5), true, true),
          spec("fc.bias", randn_double({4}, 22, 0.1), false, true),
          spec("norm.weight", torch::ones({3}, torch::kDouble), false, true)};
}

torch::Tensor grad_for(const ParamSpec& s, size_t i, int t) {
  return randn_double(s.param.sizes().vec(), 500 + 31 * i + t, (t % 2) ? 2.0 : 0.01);  // clipped on odd steps
}

void set_grads(std::vector<ParamSpec>& ps, int t) {
  for (size_t i = 0; i < ps.size(); ++i) ps[i].param.mutable_grad() = grad_for(ps[i], i, t);
}

// The update written out per element: clip by global norm, decoupled decay, Adam with bias correction.
struct Reference {
  std::vector<std::vector<double>> p, m, v;
  bool wd_flag[3] = {true, false, false};
  void init(const std::vector<ParamSpec>& ps) {
    for (const auto& s : ps) {
      auto c = s.param.detach().contiguous();
      p.emplace_back(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
      m.emplace_back(c.numel(), 0.0);
      v.emplace_back(c.numel(), 0.0);
    }
  }
  // Returns the global norm before clipping.
  double step(const std::vector<ParamSpec>& ps, int t, double lr, const AdamWOptions& o) {
    std::vector<std::vector<double>> g;
    double sq = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      auto c = grad_for(ps[i], i, t).contiguous();
      g.emplace_back(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
      for (double x : g.back()) sq += x * x;
    }
    const double norm = std::sqrt(sq);
    const double scale = (o.clip_global_norm > 0 && norm > o.clip_global_norm) ? o.clip_global_norm / norm : 1.0;
    const double decay = o.weight_decay * (o.decay == DecayConvention::kTorch ? lr : lr / o.peak_lr);
    for (size_t i = 0; i < ps.size(); ++i)
      for (size_t k = 0; k < p[i].size(); ++k) {
        const double gk = g[i][k] * scale;
        if (wd_flag[i]) p[i][k] -= decay * p[i][k];
        m[i][k] = o.beta1 * m[i][k] + (1 - o.beta1) * gk;
        v[i][k] = o.beta2 * v[i][k] + (1 - o.beta2) * gk * gk;
        const double mh = m[i][k] / (1 - std::pow(o.beta1, t + 1));
        const double vh = v[i][k] / (1 - std::pow(o.beta2, t + 1));
        p[i][k] -= lr * mh / (std::sqrt(vh) + o.eps);
      }
    return norm;
  }
};

void run_against_formula(const AdamWOptions& o) {
  auto ps = make_params();
  Reference ref;
  ref.init(ps);
  AdamW opt(ps, o);
  const double lrs[] = {1e-3, 2e-3, 5e-4, 1.5e-3, 1e-4, 0.0};
  for (int t = 0; t < 6; ++t) {
    set_grads(ps, t);
    const StepStats st = opt.step(lrs[t]);
    const double norm = ref.step(ps, t, lrs[t], o);
    EXPECT_NEAR(st.grad_norm, norm, 1e-12 * norm);
    EXPECT_EQ(st.units_clipped, (o.clip_global_norm > 0 && norm > o.clip_global_norm) ? 1 : 0);
    for (size_t i = 0; i < ps.size(); ++i) {
      auto c = ps[i].param.detach().contiguous();
      for (int64_t k = 0; k < c.numel(); ++k)
        EXPECT_NEAR(c.data_ptr<double>()[k], ref.p[i][static_cast<size_t>(k)], 1e-13) << "step " << t << " " << ps[i].name;
    }
  }
  EXPECT_EQ(opt.step_count(), 6);
}

TEST(AdamW, BigVisionDecayWithClippingMatchesFormula) {
  AdamWOptions o;
  o.weight_decay = 0.05;  // large enough to matter
  o.decay = DecayConvention::kBigVision;
  o.peak_lr = 2e-3;
  run_against_formula(o);
}

TEST(AdamW, TorchDecayWithoutClippingMatchesFormula) {
  AdamWOptions o;
  o.weight_decay = 0.3;
  o.decay = DecayConvention::kTorch;
  o.clip_global_norm = 0;
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  o.eps = 1e-6;
  run_against_formula(o);
}

TEST(AdamW, ConventionsAgreeWhenTorchLambdaIsBigVisionDecayOverPeakLr) {
  auto a = make_params(), b = make_params();
  AdamWOptions bv;
  bv.weight_decay = 1e-4;
  bv.peak_lr = 1e-3;
  AdamWOptions torch_o = bv;
  torch_o.decay = DecayConvention::kTorch;
  torch_o.weight_decay = 1e-4 / 1e-3;
  AdamW oa(a, bv), ob(b, torch_o);
  for (int t = 0; t < 3; ++t) {
    set_grads(a, t);
    set_grads(b, t);
    oa.step(1e-3 * (t + 1) / 3);
    ob.step(1e-3 * (t + 1) / 3);
  }
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LT((a[i].param - b[i].param).abs().max().item<double>(), 1e-15) << a[i].name;
}

TEST(GlobalNormClip, ScalesEveryGradientByMaxOverNormOnlyAboveTheThreshold) {
  auto ps = make_params();
  set_grads(ps, 1);  // large gradients
  std::vector<torch::Tensor> before;
  double sq = 0;
  for (auto& s : ps) {
    before.push_back(s.param.grad().clone());
    sq += s.param.grad().pow(2).sum().item<double>();
  }
  EXPECT_NEAR(global_grad_norm(ps), std::sqrt(sq), 1e-12);
  const double norm = clip_grad_global_norm_(ps, 1.0);
  EXPECT_NEAR(norm, std::sqrt(sq), 1e-12);
  EXPECT_NEAR(global_grad_norm(ps), 1.0, 1e-12);
  for (size_t i = 0; i < ps.size(); ++i)
    EXPECT_LT((ps[i].param.grad() - before[i] / std::sqrt(sq)).abs().max().item<double>(), 1e-15);
  // Below the threshold (and disabled): untouched, bit for bit.
  for (double max_norm : {10.0 * std::sqrt(sq), 0.0}) {
    set_grads(ps, 1);
    clip_grad_global_norm_(ps, max_norm);
    for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(bit_equal(ps[i].param.grad(), before[i]));
  }
  EXPECT_THROW(clip_grad_global_norm_(ps, std::nan("")), UserError);
}


TEST(AdamW, SaveLoadResumesBitExactly) {
  AdamWOptions o;
  o.peak_lr = 1e-3;
  auto a = make_params();
  AdamW opt_a(a, o);
  for (int t = 0; t < 3; ++t) {
    set_grads(a, t);
    opt_a.step(1e-3);
  }
  const std::string bytes = save_to_string(opt_a);
  auto b = make_params();
  for (size_t i = 0; i < a.size(); ++i) b[i].param.detach().copy_(a[i].param.detach());
  AdamW opt_b(b, o);
  load_from_string(opt_b, bytes);
  EXPECT_EQ(opt_b.step_count(), 3);
  for (int t = 3; t < 5; ++t) {
    set_grads(a, t);
    set_grads(b, t);
    opt_a.step(1e-3);
    opt_b.step(1e-3);
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bit_equal(a[i].param, b[i].param)) << a[i].name;
  // State of another optimiser kind or another model is refused, leaving the state untouched.
  auto c = make_params();
  SgdAgc sgd(c, {});
  EXPECT_THROW(load_from_string(opt_b, save_to_string(sgd)), UserError);
  auto d = make_params();
  d.pop_back();
  AdamW smaller(d, o);
  EXPECT_THROW(load_from_string(smaller, bytes), UserError);
  EXPECT_EQ(smaller.step_count(), 0);
}

TEST(OptimizerFactory, BuildsEachKindAndRejectsUnknownOnes) {
  OptimizerConfig c;
  c.adamw.peak_lr = 1e-3;
  for (const auto& kind : optimizer_kinds()) {
    c.kind = kind;
    EXPECT_EQ(make_optimizer(c, make_params())->kind(), kind);
  }
  c.kind = "lamb";
  try {
    make_optimizer(c, make_params());
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("adamw"), std::string::npos);
  }
}

TEST(AdamW, BadOptionsNameTheField) {
  AdamWOptions o;
  o.beta2 = 1.0;
  EXPECT_THROW(AdamW(make_params(), o), UserError);
  o = AdamWOptions{};
  o.peak_lr = 0;  // big_vision decay needs the peak
  try {
    AdamW(make_params(), o);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("peak_lr"), std::string::npos);
  }
  EXPECT_THROW(parse_decay_convention("keras", "decay_convention"), UserError);
}

}  // namespace
}  // namespace nfscale::optim
