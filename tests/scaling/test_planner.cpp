// test_planner.cpp - the planner on a synthetic study generated from a known L(N, D): it picks the truly best
// available model, the epoch budget that spends the budget, the LR from the model's LR law, and flags extrapolation.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/scaling/planner.h"
#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

const ChinchillaParams kLaw{1.5, 400.0, 400.0, 0.34, 0.28};
constexpr double kDataset = 1e9;         // examples per epoch
constexpr double kFlopsPerParam = 60.0;  // train FLOPs per example = 60 * N
// Budgets 1/16 .. 64 epochs, wide enough that each model is compute-optimal somewhere (N_opt ~ 1.37 (C/60)^0.45).
const double kEpochs[] = {1.0 / 16, 1.0 / 8, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64};

std::vector<ModelCostInfo> models() {
  std::vector<ModelCostInfo> m;
  int i = 0;
  for (double n : {1e7, 3e7, 1e8, 3e8, 1e9}) m.push_back({"M" + std::to_string(i++), n, kFlopsPerParam * n});
  return m;
}

// Optimal LR of model k at e epochs: 1.6 * e^-(0.1 + 0.05 k) (falls faster for larger models).
double lr_opt(int k, double e) { return 1.6 * std::pow(e, -(0.1 + 0.05 * k)); }

// Every model trained at every epoch budget on a 2^k LR grid; loss = L(N, D) + LR penalty.
std::vector<RunPoint> study_points() {
  std::vector<RunPoint> pts;
  auto ms = models();
  for (size_t k = 0; k < ms.size(); ++k)
    for (double e : kEpochs)
      for (double lr : {0.1, 0.2, 0.4, 0.8, 1.6, 3.2}) {
        RunPoint p;
        p.model = ms[k].model;
        p.params = ms[k].params;
        p.epochs = e;
        p.examples = e * kDataset;
        p.flops = p.examples * ms[k].train_flops_per_example;
        p.lr = lr;
        double d = std::log2(lr / lr_opt(static_cast<int>(k), e));
        p.loss = kLaw(p.params, p.examples) + 0.01 * d * d;
        pts.push_back(p);
      }
  return pts;
}

// The truly best available model at compute C under the generating law (ignoring LR), and its loss.
std::pair<std::string, double> true_best(double C) {
  std::string best;
  double best_loss = INFINITY;
  for (auto& m : models()) {
    double loss = kLaw(m.params, C / m.train_flops_per_example);
    if (loss < best_loss) {
      best_loss = loss;
      best = m.model;
    }
  }
  return {best, best_loss};
}

const StudyFit& fitted() {
  static const StudyFit s = [] {
    FitOptions o;
    o.bootstrap.resamples = 200;
    o.chinchilla.coarse_grid = true;
    return fit_study(study_points(), o);
  }();
  return s;
}

TEST(Planner, PicksTheTrulyBestModelInsideTheFittedRange) {
  const StudyFit& s = fitted();
  ASSERT_TRUE(s.compute_optimal.has_value()) << s.compute_optimal_error;
  ASSERT_TRUE(s.frontier.has_value()) << s.frontier_error;
  int agree = 0, total = 0;
  PlanOptions po;
  po.dataset_size = kDataset;
  for (double C = s.frontier->min_flops * 4; C < s.frontier->max_flops / 4; C *= 2) {
    Budget b;
    b.amount = C;
    Plan p = plan_budget(s, models(), b, po);
    auto [best_model, best_loss] = true_best(C);
    ++total;
    agree += p.model == best_model;
    // Near a switch-over the snapped model may be the neighbour; its loss is then within 1% of the best.
    EXPECT_NEAR(kLaw(p.params, C / p.train_flops_per_example) / best_loss, 1.0, 0.01)
        << "C=" << C << " chose " << p.model << " true best " << best_model;
    EXPECT_NEAR(p.epochs * kDataset * p.train_flops_per_example, C, 1e-6 * C);  // spends the budget
  }
  std::printf("planner picked the truly best model at %d of %d budgets\n", agree, total);
  EXPECT_GE(agree, total * 3 / 4);
}

TEST(Planner, LearningRateFromTheModelLawAndLossInterval) {
  const StudyFit& s = fitted();
  PlanOptions po;
  po.dataset_size = kDataset;
  Budget b;
  b.amount = kFlopsPerParam * 1e8 * kDataset * 2;  // around the middle of the fitted range
  EXPECT_FALSE(plan_budget(s, models(), b, po).extrapolated);
  Plan p = plan_budget(s, models(), b, po);
  int k = std::stoi(p.model.substr(1));
  EXPECT_NEAR(p.lr / lr_opt(k, p.epochs), 1.0, 1e-6) << format_plan(p);
  EXPECT_NE(p.lr_method.find("law"), std::string::npos);
  EXPECT_LT(p.predicted_loss.lo, p.predicted_loss.value);
  EXPECT_GT(p.predicted_loss.hi, p.predicted_loss.value);
  // The frontier prediction is close to the frontier's actual loss here (inside the fitted range).
  double truth = true_best(b.amount).second;
  // The true frontier is curved (E > 0): the straight power law is off by a few percent, the offset law less.
  EXPECT_NEAR(p.predicted_loss.value / truth, 1.0, 0.06);
  EXPECT_NEAR(p.predicted_loss_offset.value / truth, 1.0, 0.02);
  nlohmann::json j = to_json(p);
  EXPECT_EQ(j["model"], p.model);
}

TEST(Planner, BudgetUnitsAndExtrapolationFlag) {
  const StudyFit& s = fitted();
  PlanOptions po;
  po.dataset_size = kDataset;
  Budget hours;
  hours.unit = BudgetUnit::TpuV4CoreHours;
  hours.amount = flops_to_tpu_v4_core_hours(s.frontier->max_flops * 100);
  Plan p = plan_budget(s, models(), hours, po);
  EXPECT_NEAR(p.flops / (s.frontier->max_flops * 100), 1.0, 1e-9);
  EXPECT_TRUE(p.extrapolated);
  EXPECT_EQ(p.model, "M4");  // the largest available model
  bool says_extrapolated = false;
  for (auto& n : p.notes) says_extrapolated |= n.find("extrapolated") != std::string::npos;
  EXPECT_TRUE(says_extrapolated);

  Budget secs;
  secs.unit = BudgetUnit::LocalSeconds;
  secs.amount = 3600;
  EXPECT_THROW(plan_budget(s, models(), secs, po), UserError);  // needs a measured FLOP/s
  secs.local_flops_per_second = 1e12;
  Plan q = plan_budget(s, models(), secs, po);
  EXPECT_DOUBLE_EQ(q.flops, 3.6e15);
  EXPECT_DOUBLE_EQ(q.local_seconds, 3600);

  EXPECT_EQ(parse_budget_unit("core-hours"), BudgetUnit::TpuV4CoreHours);
  EXPECT_THROW(parse_budget_unit("hours"), UserError);
  EXPECT_THROW(plan_budget(s, {}, secs, po), UserError);
  EXPECT_THROW(plan_budget(s, models(), secs, PlanOptions{}), UserError);  // no dataset size
}

}  // namespace
}  // namespace nfscale::scaling
