// plan_check.cpp - training the planner's recommendation and comparing predicted with achieved held-out loss.
#include "nfscale/study/plan_check.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "nfscale/scaling/text_format.h"
#include "nfscale/store/results_store.h"
#include "nfscale/study/pipeline.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/util/process.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {
using scaling::fmt;

std::string record_path(const StudySpec& spec) { return (fs::path(spec.out_dir) / "plan-check" / "plan.json").string(); }

// Reads the check's trial back from its database into `c`.
void read_result(PlanCheck& c, const StudySpec& check) {
  if (check.db.empty() && !fs::exists(check.db_path())) return;
  auto db = store::open_results_store(check.db_path());
  for (auto& t : db->trials(check.name)) {
    if (t.status == store::TrialStatus::Failed) c.error = "the planned run diverged: " + t.error;
    if (t.status != store::TrialStatus::Done || !t.result) continue;
    c.done = true;
    c.achieved_loss = t.result->holdout_loss;
    c.achieved_top1_err = t.result->holdout_top1_error;
    c.achieved_flops = t.result->flops;
    c.seconds = t.result->seconds;
  }
  if (!c.done) return;
  const auto& p = c.plan.run_interval_power();
  if (std::isfinite(p.lo) && std::isfinite(p.hi)) c.inside_power = p.contains(c.achieved_loss);
  const auto& o = c.plan.run_interval_offset();
  if (std::isfinite(o.lo) && std::isfinite(o.hi)) c.inside_offset = o.contains(c.achieved_loss);
}
}  // namespace

std::string PlanCheck::verdict() const {
  if (!done) return "planner check not completed: " + (error.empty() ? std::string("the run did not finish") : error);
  const auto& p = plan.run_interval_power();
  const bool run = plan.has_run_intervals();
  const std::string kind = run ? "95% interval for one run" : "95% interval";
  std::string s = "planned " + plan.model + " for " + fmt("%.3g", plan.epochs) + " epochs at base LR " +
                  fmt("%.3g", plan.lr) + " (" + fmt("%.3g", budget_flops) + " FLOPs, " + fmt("%g", factor) +
                  "x the largest swept budget): predicted held-out loss " + fmt("%.4f", p.value) + " [" +
                  fmt("%.4f", p.lo) + ", " + fmt("%.4f", p.hi) + "], achieved " + fmt("%.4f", achieved_loss) + " (" +
                  fmt("%+.1f", 100 * (achieved_loss / p.value - 1)) + "%): " +
                  (inside_power.value_or(false) ? "inside" : "OUTSIDE") + " the power law's " + kind;
  if (inside_offset)
    s += std::string("; ") + (*inside_offset ? "inside" : "outside") + " the L = E + a C^b " + kind + " " + "[" +
         fmt("%.4f", plan.run_interval_offset().lo) + ", " + fmt("%.4f", plan.run_interval_offset().hi) + "]";
  if (run)
    s += " (the fitted curves' own intervals: [" + fmt("%.4f", plan.predicted_loss.lo) + ", " +
         fmt("%.4f", plan.predicted_loss.hi) + "]" +
         (std::isfinite(plan.predicted_loss_offset.lo)
              ? " and [" + fmt("%.4f", plan.predicted_loss_offset.lo) + ", " +
                    fmt("%.4f", plan.predicted_loss_offset.hi) + "]"
              : std::string()) +
         ")";
  return s;
}

StudySpec plan_check_spec(const StudySpec& spec, const scaling::Plan& plan) {
  StudySpec c = spec;
  c.name = spec.name + "-plan-check";
  c.out_dir = (fs::path(spec.out_dir) / "plan-check").string();
  c.models = {plan.model};
  c.epochs = {plan.epochs};
  c.model_epochs.clear();
  c.lrs = {plan.lr};
  c.adaptive_lr = false;
  c.seeds = {spec.seeds.front()};
  c.frontier_repeats = 0;
  c.plan_check = 0;
  return c;
}

namespace {

// The plan for spec.plan_check x the largest recorded trial, from the points recorded so far; a plan once made is
// kept (read back from plan.json): a resumed study trains the same recommendation, even if refits would move it.
void make_plan(PlanCheck& c, const StudySpec& spec, const scaling::FitOptions& fit_options) {
  c.factor = spec.plan_check;
  c.out_dir = (fs::path(spec.out_dir) / "plan-check").string();
  if (auto previous = read_plan_check(spec)) {
    c = *previous;
    return;
  }
  auto pts = study_points(spec.db_path(), spec.name);
  scaling::StudyFit fit = scaling::fit_study(pts, fit_options);
  double dataset_size = 0, max_flops = 0;
  auto models = planner_models(pts, &dataset_size);
  for (auto& p : pts) max_flops = std::max(max_flops, p.flops);
  c.budget_flops = c.factor * max_flops;
  scaling::Budget b;
  b.amount = c.budget_flops;
  b.unit = scaling::BudgetUnit::Flops;
  scaling::PlanOptions po;
  po.dataset_size = dataset_size;
  c.plan = scaling::plan_budget(fit, models, b, po);
  require(std::isfinite(c.plan.lr) && c.plan.lr > 0, "the planner gave no learning rate for " + c.plan.model);
  make_dirs(c.out_dir);
  write_file_atomic(record_path(spec), to_json(c).dump(2) + "\n");
}

// The plan's predicted loss again, from the fit of every point recorded now (same budget, same model).
void refresh_prediction(PlanCheck& c, const StudySpec& spec, const scaling::FitOptions& fit_options) {
  scaling::StudyFit fit = scaling::fit_study(study_points(spec.db_path(), spec.name), fit_options);
  if (!fit.frontier) return;
  c.plan.predicted_loss = fit.frontier->predict_power(c.plan.flops);
  c.plan.predicted_loss_offset = fit.frontier->predict_offset(c.plan.flops);
  c.plan.predicted_run_loss = fit.frontier->predict_run_power(c.plan.flops);
  c.plan.predicted_run_loss_offset = fit.frontier->predict_run_offset(c.plan.flops);
}

}  // namespace

pid_t start_plan_check(PlanCheck& c, const StudySpec& spec, const scaling::FitOptions& fit_options,
                       const SweepOptions& options) {
  try {
    make_plan(c, spec, fit_options);
    StudySpec check = plan_check_spec(spec, c.plan);
    {
      make_dirs(check.out_dir);
      auto db = store::open_results_store(check.db_path());
      register_study(*db, check);
      auto n = db->counts(check.name);
      if (n.pending == 0 && n.running == 0) return -1;  // trained already (a resumed study)
    }
    SpawnOptions child;
    if (!spec.db.empty()) child.env.push_back({"NFSCALE_DB", spec.db});  // not argv: it may hold a password
    child.stderr_path = (fs::path(check.out_dir) / "worker.log").string();
    std::fprintf(stderr, "[study] planner check: %s for %.3g epochs at base LR %.3g trains beside the seed repeats "
                 "(log: %s)\n", c.plan.model.c_str(), c.plan.epochs, c.plan.lr, child.stderr_path.c_str());
    // Once its run is trained, the same worker claims seed repeats until none is left, so its core does not idle
    // while the repeats' own worker finishes them alone (the default study: 124 s of 1083, session 14).
    return spawn_process({"/proc/self/exe", "--threads", "1", "sweep", "--study-file",
                          (fs::path(check.out_dir) / "study.json").string(), "--worker-only", "--stale-after",
                          std::to_string(options.stale_after_s), "--then-study-file",
                          (fs::path(spec.out_dir) / "study.json").string()},
                         child);
  } catch (const UserError& e) {
    c.error = e.what();
    return -1;
  }
}

void finish_plan_check(PlanCheck& c, pid_t worker, const StudySpec& spec, const scaling::FitOptions& fit_options,
                       bool interrupted) {
  if (worker > 0) {
    if (interrupted) signal_process(worker, SIGTERM);  // it checkpoints and releases its trial
    const int rc = wait_process(worker);
    if (rc != 0 && !interrupted && c.error.empty())
      c.error = "the planned run's worker exited with status " + std::to_string(rc) + "; see " +
                (fs::path(c.out_dir) / "worker.log").string();
  }
  if (interrupted) {
    c.error = "interrupted; re-run the same command to resume the planned run";
    return;
  }
  if (!c.error.empty() && c.plan.model.empty()) return;  // planning itself failed
  try {
    refresh_prediction(c, spec, fit_options);
    read_result(c, plan_check_spec(spec, c.plan));
    write_file_atomic(record_path(spec), to_json(c).dump(2) + "\n");
  } catch (const UserError& e) {
    c.error = e.what();
  }
}

PlanCheck run_plan_check(const StudySpec& spec, const scaling::FitOptions& fit_options, const SweepOptions& options) {
  PlanCheck c;
  try {
    make_plan(c, spec, fit_options);
    StudySpec check = plan_check_spec(spec, c.plan);
    SweepOptions o = options;
    o.workers = 1;  // one run: it gets every core
    o.phase = "planner check";
    SweepSummary s = run_sweep(check, o);
    if (s.interrupted) {
      c.error = "interrupted; re-run the same command to resume the planned run";
      return c;
    }
    read_result(c, check);
    write_file_atomic(record_path(spec), to_json(c).dump(2) + "\n");
  } catch (const UserError& e) {
    c.error = e.what();
  }
  return c;
}

std::optional<PlanCheck> read_plan_check(const StudySpec& spec) {
  const std::string path = record_path(spec);
  if (!fs::exists(path)) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + ": not valid JSON (" + std::string(e.what()) + "); delete it to plan the check again");
  }
  PlanCheck c;
  try {
    c.factor = j.at("factor").get<double>();
    c.budget_flops = j.at("budget_flops").get<double>();
    c.out_dir = (fs::path(spec.out_dir) / "plan-check").string();
    const auto& p = j.at("plan");
    c.plan.flops = p.at("flops").get<double>();
    c.plan.model = p.at("model").get<std::string>();
    c.plan.params = p.at("params").is_number() ? p.at("params").get<double>() : scaling::kMissing;
    c.plan.epochs = p.at("epochs").get<double>();
    c.plan.examples = p.at("examples").get<double>();
    c.plan.lr = p.at("lr").get<double>();
    c.plan.lr_method = p.value("lr_method", "");
    auto est = [](const nlohmann::json& e) {
      scaling::Estimate x;
      auto num = [&](const char* k) {
        return e.is_object() && e.contains(k) && e[k].is_number() ? e[k].get<double>() : scaling::kMissing;
      };
      x.value = num("value");
      x.lo = num("lo");
      x.hi = num("hi");
      return x;
    };
    c.plan.predicted_loss = est(p.value("predicted_loss", nlohmann::json()));
    c.plan.predicted_loss_offset = est(p.value("predicted_loss_offset", nlohmann::json()));
    // Absent from plans written before session 6: the check falls back to the curve intervals.
    c.plan.predicted_run_loss = est(p.value("predicted_run_loss", nlohmann::json()));
    c.plan.predicted_run_loss_offset = est(p.value("predicted_run_loss_offset", nlohmann::json()));
    c.plan.extrapolated = p.value("extrapolated", false);
    c.plan.notes = p.value("notes", std::vector<std::string>{});
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + ": missing or mistyped field (" + std::string(e.what()) +
                    "); delete the file to plan the check again");
  }
  read_result(c, plan_check_spec(spec, c.plan));
  return c;
}

nlohmann::json to_json(const PlanCheck& c) {
  nlohmann::json j = {{"factor", c.factor}, {"budget_flops", c.budget_flops}, {"plan", scaling::to_json(c.plan)},
                      {"done", c.done}};
  if (c.done) {
    j["achieved"] = {{"holdout_loss", c.achieved_loss}, {"holdout_top1_err", c.achieved_top1_err},
                     {"flops", c.achieved_flops}, {"seconds", c.seconds}};
    if (c.inside_power) j["inside_power_interval"] = *c.inside_power;
    if (c.inside_offset) j["inside_offset_interval"] = *c.inside_offset;
  }
  if (!c.error.empty()) j["error"] = c.error;
  j["verdict"] = c.verdict();
  return j;
}

}  // namespace nfscale::study
