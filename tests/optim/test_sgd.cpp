// test_sgd.cpp - SgdAgc against the reference update written out independently (AGC -> weight decay -> momentum
// -> Nesterov step) over several steps with per-parameter flags, step statistics, bit-exact save/load resume,
// and failure paths (bad options, bad parameter lists, mismatched checkpoints).
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers grad_for, make_params, run_against_formula, set_grads share names with another test file's).
#include <gtest/gtest.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <sstream>

#include "nfscale/optim/sgd_agc.h"
#include "nfscale/util/error.h"
#include "optim_test_util.h"

namespace nfscale::optim {
namespace {

using test::agc_reference;
using test::bit_equal;
using test::load_from_string;
using test::save_to_string;
using test::randn_double;
using test::spec;

// conv weight (decay + AGC), gain vector (no decay, AGC), classifier weight (decay, no AGC), scalar skip gain.
std::vector<ParamSpec> make_params() {
  return {spec("conv.weight", randn_double({3, 2, 2, 2}, 11, 0.5), true, true),
          spec("conv.gain", torch::ones({3}, torch::kDouble), false, true),
          spec("fc.weight", randn_double({2, 3}, 12, 0.1), true, false),
          spec("skip_gain", torch::zeros({}, torch::kDouble), false, true)};
}

// Gradient for param i at step t: mixed magnitudes so that AGC clips some units and not others.
torch::Tensor grad_for(const ParamSpec& s, size_t i, int t) {
  return randn_double(s.param.sizes().vec(), 1000 + 17 * i + t, (t % 2) ? 0.05 : 0.001);
}

void set_grads(std::vector<ParamSpec>& ps, int t) {
  for (size_t i = 0; i < ps.size(); ++i) ps[i].param.mutable_grad() = grad_for(ps[i], i, t);
}

void run_against_formula_once(const SgdAgcOptions& opt) {
  auto ps = make_params();
  std::vector<torch::Tensor> w, buf;
  for (auto& s : ps) {
    w.push_back(s.param.detach().clone());
    buf.push_back(torch::zeros_like(w.back()));
  }
  SgdAgc sgd(ps, opt);
  const double lrs[] = {0.5, 1.6, 0.9, 0.1, 0.0};
  for (int t = 0; t < 5; ++t) {
    set_grads(ps, t);
    double sq = 0;
    int64_t clipped = 0, total = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      torch::Tensor g = grad_for(ps[i], i, t);
      sq += g.square().sum().item<double>();
      if (opt.agc && ps[i].agc) {
        g = agc_reference(g, w[i], opt.agc_options.clip, opt.agc_options.eps, 1e-6, &clipped);
        total += (i == 0) ? 3 : 1;
      }
      if (ps[i].weight_decay) g = g + opt.weight_decay * w[i];
      buf[i] = opt.momentum * buf[i] + g;
      torch::Tensor step = opt.nesterov ? g + opt.momentum * buf[i] : buf[i];
      w[i] = w[i] - lrs[t] * step;
    }
    StepStats st = sgd.step(lrs[t]);
    EXPECT_EQ(st.lr, lrs[t]);
    EXPECT_NEAR(st.grad_norm, std::sqrt(sq), 1e-13 * std::sqrt(sq));
    EXPECT_EQ(st.units_total, total);
    EXPECT_EQ(st.units_clipped, clipped);
    for (size_t i = 0; i < ps.size(); ++i) {
      EXPECT_TRUE(torch::allclose(ps[i].param, w[i], 1e-13, 1e-15)) << ps[i].name << " step " << t;
      EXPECT_TRUE(torch::allclose(sgd.momentum_buffers()[i], buf[i], 1e-13, 1e-15)) << ps[i].name;
    }
  }
  EXPECT_EQ(sgd.step_count(), 5);
}

// Both the one-pass update (fused_update.h) and the ATen composition must match the formula.
void run_against_formula(SgdAgcOptions opt) {
  for (bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "fused update" : "ATen update");
    opt.fused = fused;
    run_against_formula_once(opt);
  }
}

// fp32, bigger tensors (the fused path splits units across threads): fused and ATen paths agree to rounding, and
// clip the same units.
TEST(SgdAgc, FusedMatchesAtenInFloat) {
  for (bool nesterov : {true, false}) {
    std::vector<ParamSpec> a, b;
    // (unit lengths 288, 96, whole, whole, 384, and 27: the last runs the norms' 8-lane loop and its remainder)
    const std::vector<std::vector<int64_t>> shapes = {{64, 32, 3, 3}, {512, 96, 1, 1}, {64}, {}, {10, 384},
                                                      {16, 3, 3, 3}};
    for (size_t i = 0; i < shapes.size(); ++i) {
      const torch::Tensor w = randn_double(shapes[i], 50 + i, 0.1).to(torch::kFloat);
      a.push_back(spec("p" + std::to_string(i), w, i % 2 == 0, i != 4));
      b.push_back(spec("p" + std::to_string(i), w, i % 2 == 0, i != 4));
    }
    SgdAgcOptions fo, ao;
    fo.nesterov = ao.nesterov = nesterov;
    fo.weight_decay = ao.weight_decay = 1e-3;
    ao.fused = false;
    SgdAgc fused(a, fo), aten(b, ao);
    for (int t = 0; t < 4; ++t) {
      for (size_t i = 0; i < a.size(); ++i) {
        // Per-unit scales spread over two decades so that some units clip and others do not.
        torch::Tensor g = randn_double(shapes[i], 900 + 10 * t + i, 1e-3).to(torch::kFloat);
        if (g.dim() > 1) {
          std::vector<int64_t> unit_shape(g.dim(), 1);  // [O, 1, ...]
          unit_shape[0] = g.size(0);
          g.mul_(torch::logspace(-1, 1, g.size(0), 10.0, torch::kFloat).view(unit_shape));
        }
        a[i].param.mutable_grad() = g.clone();
        b[i].param.mutable_grad() = g.clone();
      }
      const StepStats sf = fused.step(0.4), sa = aten.step(0.4);
      EXPECT_EQ(sf.units_total, sa.units_total);
      EXPECT_EQ(sf.units_clipped, sa.units_clipped) << "step " << t;
      EXPECT_GT(sf.units_clipped, 0);
      EXPECT_LT(sf.units_clipped, sf.units_total);
      EXPECT_NEAR(sf.grad_norm, sa.grad_norm, 1e-5 * sa.grad_norm);
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(torch::allclose(a[i].param, b[i].param, 1e-6, 1e-8)) << a[i].name << " step " << t;
        EXPECT_TRUE(torch::allclose(fused.momentum_buffers()[i], aten.momentum_buffers()[i], 1e-5, 1e-8))
            << a[i].name << " step " << t;
        EXPECT_TRUE(torch::allclose(a[i].param.grad(), b[i].param.grad(), 1e-5, 1e-8)) << a[i].name;
      }
    }
  }
}

// The fused update's parameters, buffers and statistics are bit-identical at 1 and 2 intra-op threads (the units
// are split over the threads; the gradient norm is summed in unit order, not in the order the threads finish).
TEST(SgdAgc, FusedUpdateIsBitIdenticalAcrossThreadCounts) {
  const int threads_before = at::get_num_threads();
  const std::vector<std::vector<int64_t>> shapes = {{256, 64, 3, 3}, {2048, 96, 1, 1}, {10, 384}};
  std::vector<std::vector<torch::Tensor>> params_after, buffers_after;
  std::vector<double> norms;
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    std::vector<ParamSpec> ps;
    for (size_t i = 0; i < shapes.size(); ++i)
      ps.push_back(spec("p" + std::to_string(i), randn_double(shapes[i], 70 + i, 0.1).to(torch::kFloat), true, true));
    SgdAgcOptions o;
    o.weight_decay = 1e-3;
    SgdAgc opt(ps, o);
    double norm = 0;
    for (int t = 0; t < 3; ++t) {
      for (size_t i = 0; i < ps.size(); ++i)
        ps[i].param.mutable_grad() = randn_double(shapes[i], 700 + 10 * t + i, 1e-2).to(torch::kFloat);
      norm += opt.step(0.3).grad_norm;
    }
    std::vector<torch::Tensor> p, b;
    for (size_t i = 0; i < ps.size(); ++i) {
      p.push_back(ps[i].param.detach().clone());
      b.push_back(opt.momentum_buffers()[i].clone());
    }
    params_after.push_back(p);
    buffers_after.push_back(b);
    norms.push_back(norm);
  }
  at::set_num_threads(threads_before);
  EXPECT_EQ(norms[0], norms[1]);  // exact
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_TRUE(bit_equal(params_after[0][i], params_after[1][i])) << "param " << i;
    EXPECT_TRUE(bit_equal(buffers_after[0][i], buffers_after[1][i])) << "buffer " << i;
  }
}

TEST(SgdAgc, NesterovWithDecayAndAgcMatchesFormula) {
  SgdAgcOptions opt;
  opt.weight_decay = 0.01;  // larger than the default so a wrong decay flag shows up clearly
  run_against_formula(opt);
}

TEST(SgdAgc, PlainMomentumMatchesFormula) {
  SgdAgcOptions opt;
  opt.nesterov = false;
  opt.momentum = 0.8;
  run_against_formula(opt);
}

TEST(SgdAgc, AgcDisabledMatchesFormula) {
  SgdAgcOptions opt;
  opt.agc = false;
  run_against_formula(opt);
}

TEST(SgdAgc, ClippingActuallyHappensInTheseFixtures) {
  auto ps = make_params();
  SgdAgc sgd(ps);
  set_grads(ps, 1);  // large grads
  StepStats st = sgd.step(0.1);
  EXPECT_EQ(st.units_total, 3 + 1 + 1);  // conv units + gain + skip_gain; fc is exempt
  EXPECT_GT(st.units_clipped, 0);
  EXPECT_GT(st.clip_fraction(), 0.0);
}

TEST(SgdAgc, UndefinedGradIsSkippedAndZeroGradAllocates) {
  auto ps = make_params();
  const torch::Tensor before = ps[2].param.detach().clone();
  SgdAgc sgd(ps);
  ps[0].param.mutable_grad() = grad_for(ps[0], 0, 0);
  sgd.step(1.0);
  EXPECT_TRUE(bit_equal(ps[2].param, before));
  EXPECT_EQ(sgd.momentum_buffers()[2].abs().sum().item<double>(), 0.0);
  sgd.zero_grad();
  for (auto& s : ps) {
    ASSERT_TRUE(s.param.grad().defined());
    EXPECT_EQ(s.param.grad().abs().sum().item<double>(), 0.0);
  }
}

TEST(SgdAgc, ClearGradsThenZeroMissingStepsLikeZeroGrad) {
  // Param 1 gets no gradient from "backward": with zero_grad it would still decay and move with its momentum;
  // clear_grads + zero_missing_grads must give the same update, bit for bit, over two steps.
  auto a = make_params(), b = make_params();
  SgdAgc oa(a), ob(b);
  for (int t = 0; t < 2; ++t) {
    oa.zero_grad();
    ob.clear_grads();
    for (auto& s : b) ASSERT_FALSE(s.param.grad().defined()) << s.name;
    for (size_t i : {0, 2, 3}) {
      torch::NoGradGuard ng;
      a[i].param.mutable_grad().add_(grad_for(a[i], i, t));  // accumulated into the zeros
      b[i].param.mutable_grad() = grad_for(b[i], i, t);      // handed over, as the first backward does
    }
    ob.zero_missing_grads();
    ASSERT_TRUE(b[1].param.grad().defined());
    EXPECT_EQ(b[1].param.grad().abs().sum().item<double>(), 0.0);
    oa.step(0.7);
    ob.step(0.7);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(bit_equal(a[i].param, b[i].param)) << "step " << t << " " << a[i].name;
      EXPECT_TRUE(bit_equal(oa.momentum_buffers()[i], ob.momentum_buffers()[i])) << a[i].name;
    }
  }
  EXPECT_FALSE(bit_equal(a[3].param, make_params()[3].param));  // the step did move the params
}


TEST(SgdAgc, SaveLoadResumesBitExactly) {
  auto a = make_params();
  SgdAgc opt_a(a);
  for (int t = 0; t < 3; ++t) {
    set_grads(a, t);
    opt_a.step(0.7);
  }
  const std::string bytes = save_to_string(opt_a);
  // A fresh optimiser over copies of the current weights, state restored from the archive.
  std::vector<ParamSpec> b;
  for (auto& s : a) b.push_back(spec(s.name, s.param.detach(), s.weight_decay, s.agc));
  SgdAgc opt_b(b);
  load_from_string(opt_b, bytes);
  EXPECT_EQ(opt_b.step_count(), 3);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bit_equal(opt_a.momentum_buffers()[i], opt_b.momentum_buffers()[i]));
  for (int t = 3; t < 6; ++t) {
    set_grads(a, t);
    set_grads(b, t);
    StepStats sa = opt_a.step(0.3 * t);
    StepStats sb = opt_b.step(0.3 * t);
    EXPECT_EQ(sa.grad_norm, sb.grad_norm);
    EXPECT_EQ(sa.units_clipped, sb.units_clipped);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(bit_equal(a[i].param, b[i].param)) << a[i].name;
    EXPECT_TRUE(bit_equal(opt_a.momentum_buffers()[i], opt_b.momentum_buffers()[i])) << a[i].name;
  }
  // The saved state is a snapshot: stepping after save does not change the bytes already written.
  EXPECT_EQ(opt_b.step_count(), 6);
}

TEST(SgdAgc, LoadRejectsMismatchedCheckpointWithoutChangingState) {
  auto a = make_params();
  SgdAgc opt_a(a);
  set_grads(a, 1);
  opt_a.step(1.0);
  const std::string bytes = save_to_string(opt_a);

  auto renamed = make_params();
  renamed[1].name = "other.gain";
  SgdAgc opt_r(renamed);
  try {
    load_from_string(opt_r, bytes);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("other.gain"), std::string::npos) << e.what();
  }
  auto reshaped = make_params();
  reshaped[2].param = torch::zeros({3, 2}, torch::kDouble).requires_grad_();
  SgdAgc opt_s(reshaped);
  EXPECT_THROW(load_from_string(opt_s, bytes), UserError);
  EXPECT_EQ(opt_s.step_count(), 0);
  for (const auto& b : opt_s.momentum_buffers()) EXPECT_EQ(b.abs().sum().item<double>(), 0.0);

  auto fewer = make_params();
  fewer.pop_back();
  SgdAgc opt_f(fewer);
  EXPECT_THROW(load_from_string(opt_f, bytes), UserError);

  torch::serialize::OutputArchive empty;
  std::ostringstream os;
  empty.save_to(os);
  torch::serialize::InputArchive in;
  std::istringstream is(os.str());
  in.load_from(is);
  EXPECT_THROW(opt_f.load(in), UserError);
}

TEST(SgdAgc, BadOptionsAndParamsThrowUserError) {
  SgdAgcOptions o;
  o.momentum = 1.0;
  EXPECT_THROW(SgdAgc(make_params(), o), UserError);
  o = {};
  o.weight_decay = -1e-5;
  EXPECT_THROW(SgdAgc(make_params(), o), UserError);
  o = {};
  o.agc_options.clip = -0.01;
  EXPECT_THROW(SgdAgc(make_params(), o), UserError);
  o.agc = false;  // clip is irrelevant when AGC is off
  EXPECT_NO_THROW(SgdAgc(make_params(), o));

  auto ps = make_params();
  ps.push_back(ps[0]);  // same tensor twice
  EXPECT_THROW(SgdAgc{ps}, UserError);
  std::vector<ParamSpec> ints{ParamSpec{"idx", torch::zeros({3}, torch::kLong), true, true}};
  EXPECT_THROW(SgdAgc{ints}, UserError);
  std::vector<ParamSpec> undef{ParamSpec{"u", torch::Tensor(), true, true}};
  EXPECT_THROW(SgdAgc{undef}, UserError);
  SgdAgc ok(make_params());
  EXPECT_THROW(ok.step(std::nan("")), UserError);
}

TEST(SgdAgc, WorksInFloat32) {
  std::vector<ParamSpec> ps{spec("w", randn_double({4, 3}, 21).to(torch::kFloat), true, true)};
  SgdAgc sgd(ps);
  ps[0].param.mutable_grad() = randn_double({4, 3}, 22).to(torch::kFloat);
  StepStats st = sgd.step(0.1);
  EXPECT_TRUE(std::isfinite(st.grad_norm));
  EXPECT_EQ(ps[0].param.scalar_type(), torch::kFloat);
  EXPECT_EQ(sgd.momentum_buffers()[0].scalar_type(), torch::kFloat);
}

}  // namespace
}  // namespace nfscale::optim
