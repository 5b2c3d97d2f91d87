// planner.cpp - budget -> (model, epochs, LR, predicted loss) from a fitted study (see planner.h).
#include "nfscale/scaling/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "nfscale/util/error.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {
namespace {


std::string g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

double log_distance(double a, double b) { return std::fabs(std::log(a) - std::log(b)); }

// The model nearest to `n` in log params.
const ModelCostInfo& nearest_model(const std::vector<ModelCostInfo>& models, double n) {
  return *std::min_element(models.begin(), models.end(), [&](const auto& a, const auto& b) {
    return log_distance(a.params, n) < log_distance(b.params, n);
  });
}

// LR for `model` at `epochs`: its law, else its nearest measured best LR. Returns false if it has no LR data.
bool lr_for_model(const StudyFit& s, const std::string& model, double epochs, Plan& plan) {
  for (auto& l : s.lr_slopes) {
    if (l.model != model) continue;
    plan.lr = l.law(epochs);
    plan.lr_method = "LR-vs-epochs law of " + model + " (lr = " + g(l.law.a) + " * epochs^" + g(l.law.b) + ")";
    if (epochs < l.min_epochs * (1 - 1e-9) || epochs > l.max_epochs * (1 + 1e-9)) {
      plan.extrapolated = true;
      plan.notes.push_back("LR extrapolated: " + g(epochs) + " epochs is outside the measured " + g(l.min_epochs) +
                           ".." + g(l.max_epochs) + " epochs of " + model);
    }
    return true;
  }
  const BestLr* nearest = nullptr;
  for (auto& b : s.best_lrs)
    if (b.model == model && (!nearest || log_distance(b.epochs, epochs) < log_distance(nearest->epochs, epochs)))
      nearest = &b;
  if (!nearest) return false;
  plan.lr = nearest->refined_lr;
  plan.lr_method = "nearest measured best LR of " + model + " (at " + g(nearest->epochs) + " epochs)";
  if (log_distance(nearest->epochs, epochs) > 1e-9)
    plan.notes.push_back("LR taken from " + g(nearest->epochs) + " epochs (no LR law for " + model +
                         "); LR usually falls as epochs grow");
  return true;
}

}  // namespace

BudgetUnit parse_budget_unit(const std::string& s) {
  if (s == "flops") return BudgetUnit::Flops;
  if (s == "tpu-v4-core-hours" || s == "core-hours") return BudgetUnit::TpuV4CoreHours;
  if (s == "seconds") return BudgetUnit::LocalSeconds;
  throw UserError("budget unit '" + s + "' is unknown; use flops, tpu-v4-core-hours (core-hours) or seconds");
}

const char* budget_unit_name(BudgetUnit u) {
  switch (u) {
    case BudgetUnit::Flops: return "flops";
    case BudgetUnit::TpuV4CoreHours: return "tpu-v4-core-hours";
    case BudgetUnit::LocalSeconds: return "seconds";
  }
  return "?";
}

double budget_to_flops(const Budget& b) {
  require(std::isfinite(b.amount) && b.amount > 0,
          "budget: amount must be a positive finite number, got " + std::to_string(b.amount));
  switch (b.unit) {
    case BudgetUnit::Flops: return b.amount;
    case BudgetUnit::TpuV4CoreHours: return tpu_v4_core_hours_to_flops(b.amount, b.tpu);
    case BudgetUnit::LocalSeconds:
      require(std::isfinite(b.local_flops_per_second) && b.local_flops_per_second > 0,
              "budget: a budget in seconds needs the measured training FLOP/s of this machine; pass it "
              "(e.g. from a benchmark run)");
      return local_seconds_to_flops(b.amount, b.local_flops_per_second);
  }
  return kMissing;
}

Plan plan_budget(const StudyFit& s, const std::vector<ModelCostInfo>& models, const Budget& budget,
                 const PlanOptions& options) {
  require(!models.empty(), "plan: no available models were given; list the models with their params and "
                           "training FLOPs per example");
  for (auto& m : models)
    require(std::isfinite(m.params) && m.params > 0 && std::isfinite(m.train_flops_per_example) &&
                m.train_flops_per_example > 0,
            "plan: model '" + m.model + "' needs positive params and train_flops_per_example");
  require(std::isfinite(options.dataset_size) && options.dataset_size > 0,
          "plan: dataset_size (examples per epoch) must be positive; pass the training-set size");
  require(s.compute_optimal || s.frontier,
          "plan: the study has neither a compute-optimal law (" + s.compute_optimal_error + ") nor a frontier (" +
              s.frontier_error + "); fit more runs first");

  Plan p;
  p.flops = budget_to_flops(budget);
  p.tpu_v4_core_hours = flops_to_tpu_v4_core_hours(p.flops, budget.tpu);
  if (std::isfinite(budget.local_flops_per_second) && budget.local_flops_per_second > 0)
    p.local_seconds = flops_to_local_seconds(p.flops, budget.local_flops_per_second);

  // Model.
  const ModelCostInfo* chosen = nullptr;
  if (s.compute_optimal) {
    const ComputeOptimalFit& co = *s.compute_optimal;
    p.n_opt.value = co.n_law(p.flops);
    std::vector<double> ns;
    for (auto& smp : co.samples.samples) ns.push_back(smp[0] * std::pow(p.flops, smp[1]));
    auto [lo, hi] = percentile_interval(ns, s.options.bootstrap.level);
    p.n_opt.lo = lo;
    p.n_opt.hi = hi;
    chosen = &nearest_model(models, p.n_opt.value);
    p.notes.push_back("model: N_opt(C) = " + g(p.n_opt.value) + " params, nearest available in log N is " +
                      chosen->model + " (" + g(chosen->params) + ")");
    if (p.flops < co.min_flops || p.flops > co.max_flops) {
      p.extrapolated = true;
      p.notes.push_back("N_opt extrapolated: budget " + g(p.flops) + " FLOPs is outside the fitted " +
                        g(co.min_flops) + ".." + g(co.max_flops));
    }
  } else {
    const FrontierFit& f = *s.frontier;
    const RunPoint* near = &f.frontier[0];
    for (auto& q : f.frontier)
      if (log_distance(q.flops, p.flops) < log_distance(near->flops, p.flops)) near = &q;
    for (auto& m : models)
      if (m.model == near->model) chosen = &m;
    if (!chosen && std::isfinite(near->params)) chosen = &nearest_model(models, near->params);
    require(chosen != nullptr, "plan: the frontier point nearest the budget is model '" + near->model +
                                   "', which is not among the available models and has no params; add it");
    p.notes.push_back("model: no compute-optimal law (" + s.compute_optimal_error + "); used the model of the "
                      "frontier point nearest the budget: " + chosen->model);
  }
  const double max_params = std::max_element(models.begin(), models.end(), [](auto& a, auto& b) {
                              return a.params < b.params;
                            })->params;
  const double min_params = std::min_element(models.begin(), models.end(), [](auto& a, auto& b) {
                              return a.params < b.params;
                            })->params;
  if (std::isfinite(p.n_opt.value) && (p.n_opt.value > max_params * 1.5 || p.n_opt.value < min_params / 1.5))
    p.notes.push_back("N_opt lies outside the available models (" + g(min_params) + ".." + g(max_params) +
                      " params): the chosen model is the closest, not compute-optimal");
  p.model = chosen->model;
  p.params = chosen->params;
  p.train_flops_per_example = chosen->train_flops_per_example;
  p.examples = p.flops / chosen->train_flops_per_example;
  p.epochs = p.examples / options.dataset_size;

  // Learning rate.
  if (!lr_for_model(s, p.model, p.epochs, p)) {
    std::vector<const ModelCostInfo*> by_distance;
    for (auto& m : models) by_distance.push_back(&m);
    std::sort(by_distance.begin(), by_distance.end(), [&](auto* a, auto* b) {
      return log_distance(a->params, p.params) < log_distance(b->params, p.params);
    });
    bool found = false;
    for (auto* m : by_distance) {
      if (m->model == p.model) continue;
      if (lr_for_model(s, m->model, p.epochs, p)) {
        p.notes.push_back("no LR data for " + p.model + "; borrowed from the nearest model with LR data, " + m->model);
        found = true;
        break;
      }
    }
    if (!found) {
      p.lr_method = "none";
      p.notes.push_back("no LR data in the study (best-LR fit: " +
                        (s.best_lrs_error.empty() ? std::string("no matching models") : s.best_lrs_error) +
                        "); tune the LR on a grid");
    }
  }

  // Predicted loss.
  if (s.frontier) {
    const FrontierFit& f = *s.frontier;
    p.predicted_loss = f.predict_power(p.flops);
    p.predicted_loss_offset = f.predict_offset(p.flops);
    p.predicted_run_loss = f.predict_run_power(p.flops);
    p.predicted_run_loss_offset = f.predict_run_offset(p.flops);
    if (p.flops < f.min_flops || p.flops > f.max_flops) {
      p.extrapolated = true;
      p.notes.push_back("loss extrapolated: budget " + g(p.flops) + " FLOPs is outside the frontier's " +
                        g(f.min_flops) + ".." + g(f.max_flops));
    }
  } else {
    p.notes.push_back("no frontier fit (" + s.frontier_error + "): no loss prediction");
  }
  return p;
}

bool Plan::has_run_intervals() const {
  return std::isfinite(predicted_run_loss.lo) && std::isfinite(predicted_run_loss.hi);
}
const Estimate& Plan::run_interval_power() const {
  return has_run_intervals() ? predicted_run_loss : predicted_loss;
}
const Estimate& Plan::run_interval_offset() const {
  return std::isfinite(predicted_run_loss_offset.lo) ? predicted_run_loss_offset : predicted_loss_offset;
}

nlohmann::json to_json(const Plan& p) {
  return {{"flops", p.flops},
          {"tpu_v4_core_hours", p.tpu_v4_core_hours},
          {"local_seconds", finite_or_null(p.local_seconds)},
          {"n_opt", to_json(p.n_opt)},
          {"model", p.model},
          {"params", finite_or_null(p.params)},
          {"train_flops_per_example", finite_or_null(p.train_flops_per_example)},
          {"examples", p.examples},
          {"epochs", p.epochs},
          {"lr", finite_or_null(p.lr)},
          {"lr_method", p.lr_method},
          {"predicted_loss", to_json(p.predicted_loss)},
          {"predicted_loss_offset", to_json(p.predicted_loss_offset)},
          {"predicted_run_loss", to_json(p.predicted_run_loss)},
          {"predicted_run_loss_offset", to_json(p.predicted_run_loss_offset)},
          {"extrapolated", p.extrapolated},
          {"notes", p.notes}};
}

std::string format_plan(const Plan& p) {
  std::string o;
  o += "Budget: " + g(p.flops) + " FLOPs = " + g(p.tpu_v4_core_hours) + " TPU-v4 core-hours";
  if (std::isfinite(p.local_seconds)) o += " = " + g(p.local_seconds) + " s on this machine";
  o += "\n";
  o += "Model:  " + p.model + " (" + g(p.params) + " params)";
  if (std::isfinite(p.n_opt.value)) o += "; compute-optimal N = " + format_estimate(p.n_opt);
  o += "\n";
  o += "Epochs: " + g(p.epochs) + " (" + g(p.examples) + " examples)\n";
  o += "LR:     " + (std::isfinite(p.lr) ? g(p.lr) : std::string("unknown")) + "  [" + p.lr_method + "]\n";
  o += "Loss:   " + format_estimate(p.predicted_loss) + " (L = a C^b)";
  if (std::isfinite(p.predicted_loss_offset.value)) o += "; " + format_estimate(p.predicted_loss_offset) + " (L = E + a C^b)";
  o += "\n";
  if (std::isfinite(p.predicted_run_loss.lo))
    o += "One run: [" + g(p.predicted_run_loss.lo) + ", " + g(p.predicted_run_loss.hi) + "] (L = a C^b)" +
         (std::isfinite(p.predicted_run_loss_offset.lo)
              ? "; [" + g(p.predicted_run_loss_offset.lo) + ", " + g(p.predicted_run_loss_offset.hi) + "] (L = E + a C^b)"
              : std::string()) +
         "  (curve interval widened by the measured seed noise)\n";
  if (p.extrapolated) o += "WARNING: extrapolation beyond the fitted range\n";
  for (auto& n : p.notes) o += "  - " + n + "\n";
  return o;
}

}  // namespace nfscale::scaling
