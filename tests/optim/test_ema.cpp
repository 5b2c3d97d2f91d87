// test_ema.cpp - EMA of weights: warm-up decay values, the update formula over several steps, bit-exact
// swap-in/restore for evaluation, bit-exact save/load, and misuse failure paths.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers make_params share names with another test file's).
#include <gtest/gtest.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <sstream>

#include "nfscale/optim/ema.h"
#include "nfscale/util/error.h"
#include "optim_test_util.h"

namespace nfscale::optim {
namespace {

using test::bit_equal;
using test::randn_double;
using test::spec;

std::vector<ParamSpec> make_params() {
  return {spec("a", randn_double({3, 4}, 31), true, true), spec("b", randn_double({4}, 32), false, true)};
}

TEST(Ema, WarmupDecayValues) {
  std::vector<ParamSpec> ps = make_params();
  Ema ema(ps);
  EXPECT_DOUBLE_EQ(ema.decay_at(0), 0.1);           // (1+0)/(10+0)
  EXPECT_DOUBLE_EQ(ema.decay_at(1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(ema.decay_at(90), 91.0 / 100.0);
  EXPECT_DOUBLE_EQ(ema.decay_at(10'000'000), 0.99999);  // (1+t)/(10+t) > 0.99999 once t > 899990
  EXPECT_LT(ema.decay_at(899'989), 0.99999);
  Ema flat(ps, EmaOptions{0.999, false});
  EXPECT_EQ(flat.decay_at(0), 0.999);
}

TEST(Ema, UpdateFollowsFormula) {
  std::vector<ParamSpec> ps = make_params();
  Ema ema(ps, EmaOptions{0.5, true});
  std::vector<torch::Tensor> ref;
  for (auto& s : ps) ref.push_back(s.param.detach().clone());
  for (int t = 0; t < 20; ++t) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < ps.size(); ++i) ps[i].param.add_(randn_double(ps[i].param.sizes().vec(), 40 + t + i));
    const double d = std::min(0.5, (1.0 + t) / (10.0 + t));
    for (size_t i = 0; i < ps.size(); ++i) ref[i] = d * ref[i] + (1 - d) * ps[i].param.detach();
    ema.update(ps, t);
  }
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(torch::allclose(ema.shadows()[i], ref[i], 1e-14, 1e-15));
  EXPECT_EQ(ema.last_step(), 19);
}

TEST(Ema, SwapInAndRestoreAreExact) {
  std::vector<ParamSpec> ps = make_params();
  Ema ema(ps);
  {
    torch::NoGradGuard ng;
    for (auto& s : ps) s.param.mul_(3.0).add_(0.25);
  }
  ema.update(ps, 0);
  std::vector<torch::Tensor> live;
  for (auto& s : ps) live.push_back(s.param.detach().clone());
  ema.swap_in(ps);
  EXPECT_TRUE(ema.swapped_in());
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(bit_equal(ps[i].param, ema.shadows()[i]));
  EXPECT_THROW(ema.swap_in(ps), UserError);
  EXPECT_THROW(ema.update(ps, 1), UserError);  // updating from EMA weights would be a silent bug
  ema.restore(ps);
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(bit_equal(ps[i].param, live[i]));
  EXPECT_THROW(ema.restore(ps), UserError);
  // A second swap reuses the backup and still restores exactly.
  ema.swap_in(ps);
  ema.restore(ps);
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(bit_equal(ps[i].param, live[i]));
}

TEST(Ema, SaveLoadBitExactAndValidated) {
  std::vector<ParamSpec> ps = make_params();
  Ema ema(ps, EmaOptions{0.9, true});
  for (int t = 0; t < 5; ++t) {
    {
      torch::NoGradGuard ng;
      for (auto& s : ps) s.param.add_(0.1 * (t + 1));
    }
    ema.update(ps, t);
  }
  torch::serialize::OutputArchive out;
  ema.save(out);
  std::ostringstream os;
  out.save_to(os);

  std::vector<ParamSpec> ps2 = make_params();
  Ema other(ps2, EmaOptions{0.9, true});
  torch::serialize::InputArchive in;
  std::istringstream is(os.str());
  in.load_from(is);
  other.load(in);
  EXPECT_EQ(other.last_step(), 4);
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(bit_equal(other.shadows()[i], ema.shadows()[i]));

  std::vector<ParamSpec> wrong = {spec("a", torch::zeros({3, 5}, torch::kDouble), true, true),
                                  spec("b", torch::zeros({4}, torch::kDouble), false, true)};
  Ema bad(wrong);
  torch::serialize::InputArchive in2;
  std::istringstream is2(os.str());
  in2.load_from(is2);
  EXPECT_THROW(bad.load(in2), UserError);
  EXPECT_EQ(bad.shadows()[1].abs().sum().item<double>(), 0.0);  // nothing half-loaded
}

TEST(Ema, MisuseThrows) {
  std::vector<ParamSpec> ps = make_params();
  EXPECT_THROW(Ema(ps, EmaOptions{1.0, true}), UserError);
  EXPECT_THROW(Ema(ps, EmaOptions{0.0, true}), UserError);
  Ema ema(ps);
  std::vector<ParamSpec> fewer(ps.begin(), ps.begin() + 1);
  EXPECT_THROW(ema.update(fewer, 0), UserError);
  std::vector<ParamSpec> renamed = ps;
  renamed[0].name = "z";
  EXPECT_THROW(ema.update(renamed, 0), UserError);
}

}  // namespace
}  // namespace nfscale::optim
