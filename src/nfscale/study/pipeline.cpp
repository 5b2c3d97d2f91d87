// pipeline.cpp - fits, plan, figures and the HTML report of a study, from its results database.
#include "nfscale/study/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nfscale/report/figures.h"
#include "nfscale/report/html.h"
#include "nfscale/report/plot.h"
#include "nfscale/scaling/compute.h"
#include "nfscale/store/results_store.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string points_csv(const std::vector<scaling::RunPoint>& pts) {
  std::ostringstream out;
  out << "model,params,examples,flops,loss,epochs,lr,top1_err,seed\n";
  out.precision(12);
  for (auto& p : pts)
    out << p.model << "," << p.params << "," << p.examples << "," << p.flops << "," << p.loss << "," << p.epochs
        << "," << p.lr << "," << p.top1_err << "," << p.seed << "\n";
  return out.str();
}

// Per model: (compute, best loss over LRs) for each epoch budget, in budget order.
std::vector<report::NamedCurve> loss_curves(const std::vector<scaling::RunPoint>& pts,
                                            const std::vector<std::string>& model_order) {
  std::map<std::string, std::map<double, std::pair<double, double>>> best;  // model -> epochs -> (flops, loss)
  for (auto& p : pts) {
    auto& slot = best[p.model][p.epochs];
    if (slot.second == 0 || p.loss < slot.second) slot = {p.flops, p.loss};
  }
  std::vector<report::NamedCurve> curves;
  for (auto& m : model_order) {
    if (!best.count(m)) continue;
    report::NamedCurve c;
    c.name = m;
    for (auto& [e, fl] : best[m]) c.points.push_back({fl.first, fl.second});
    curves.push_back(c);
  }
  return curves;
}
}  // namespace

std::vector<scaling::RunPoint> study_points(const std::string& db_path, const std::string& study) {
  auto db = store::open_results_store(db_path, store::OpenMode::MustExist);
  std::vector<scaling::RunPoint> pts;
  for (auto& t : db->trials(study)) {
    if (t.status != store::TrialStatus::Done || !t.result) continue;
    const auto& r = *t.result;
    scaling::RunPoint p;
    p.model = t.spec.model;
    p.params = double(r.params);
    p.epochs = t.spec.epochs;
    p.lr = t.spec.lr;
    p.seed = static_cast<int>(t.spec.seed);
    p.flops = r.flops;
    p.loss = r.holdout_loss;
    p.top1_err = r.holdout_top1_error;
    double n_train = 0;
    try {
      n_train = nlohmann::json::parse(r.test_metrics_json).value("train_examples", 0.0);
    } catch (const nlohmann::json::exception&) {
    }
    p.examples = n_train > 0 ? t.spec.epochs * n_train : r.flops / (6.0 * r.macs_per_image);
    p.origin = "trial " + std::to_string(t.id);
    pts.push_back(p);
  }
  require(!pts.empty(), db->location() + ": study '" + study + "' has no finished trials yet (run `nfscale sweep`)");
  return pts;
}

std::vector<scaling::ModelCostInfo> planner_models(const std::vector<scaling::RunPoint>& pts, double* dataset_size) {
  std::map<std::string, scaling::ModelCostInfo> by_model;
  for (auto& p : pts) {
    auto& m = by_model[p.model];
    m.model = p.model;
    m.params = p.params;
    m.train_flops_per_example = p.flops / p.examples;
    if (dataset_size) *dataset_size = p.examples / p.epochs;
  }
  std::vector<scaling::ModelCostInfo> out;
  for (auto& [name, m] : by_model) out.push_back(m);
  return out;
}

double measured_flops_per_second(const std::string& db_path, const std::string& study) {
  auto db = store::open_results_store(db_path, store::OpenMode::MustExist);
  double flops = 0, seconds = 0;
  for (auto& t : db->trials(study))
    if (t.status == store::TrialStatus::Done && t.result) {
      flops += t.result->flops;
      seconds += t.result->seconds;
    }
  return seconds > 0 ? flops / seconds : 0.0;
}

StudyReport write_study_report(const StudySpec& spec, const scaling::FitOptions& fit_options,
                               const FinetuneStudyOptions* finetune, const PlanCheck* check) {
  StudyReport rep;
  rep.report_dir = (fs::path(spec.out_dir) / "report").string();
  rep.html_path = (fs::path(rep.report_dir) / "index.html").string();
  make_dirs(rep.report_dir);
  std::vector<scaling::RunPoint> pts = study_points(spec.db_path(), spec.name);
  {
    auto c = store::open_results_store(spec.db_path())->counts(spec.name);
    rep.trials_done = c.done;
    rep.trials_failed = c.failed;
  }
  write_file_atomic((fs::path(rep.report_dir) / "points.csv").string(), points_csv(pts));
  rep.fit = scaling::fit_study(pts, fit_options);
  write_file_atomic((fs::path(rep.report_dir) / "fit.json").string(), scaling::to_json(rep.fit).dump(2) + "\n");

  for (auto& b : rep.fit.best_lrs) {
    rep.lr_cells++;
    rep.lr_bracketed += b.interior;
  }
  // Planner: the checked plan when there is one, else twice the largest budget run.
  double dataset_size = 0;
  auto models = planner_models(pts, &dataset_size);
  double max_flops = 0;
  for (auto& p : pts) max_flops = std::max(max_flops, p.flops);
  nlohmann::json plan_json;
  if (check) {
    rep.plan_check = *check;
    rep.plan_factor = check->factor;
    if (check->budget_flops > 0) rep.plan = check->plan;
    else rep.plan_error = check->error;
    plan_json = to_json(check->plan);
    plan_json["check"] = to_json(*check);
  } else {
    try {
      scaling::Budget b;
      b.amount = rep.plan_factor * max_flops;
      b.unit = scaling::BudgetUnit::Flops;
      scaling::PlanOptions po;
      po.dataset_size = dataset_size;
      rep.plan = scaling::plan_budget(rep.fit, models, b, po);
      plan_json = scaling::to_json(*rep.plan);
    } catch (const UserError& e) {
      rep.plan_error = e.what();
    }
  }
  if (!plan_json.is_null())
    write_file_atomic((fs::path(rep.report_dir) / "plan.json").string(), plan_json.dump(2) + "\n");

  // Figures.
  report::HtmlReport html("nfscale study '" + spec.name + "'");
  html.paragraph("Scaling study of NFNets after Smith et al. (2023), 'ConvNets Match Vision Transformers at Scale'. "
                 "Models: " + std::to_string(spec.models.size()) + ", epoch budgets: " +
                 std::to_string(spec.epochs.size()) + ", trials done: " + std::to_string(rep.trials_done) +
                 ", failed (diverged): " + std::to_string(rep.trials_failed) + ". Data: " + spec.base.data +
                 " at " + std::to_string(spec.base.resolution) + " px, held-out " +
                 std::to_string(spec.base.holdout) + " images. Compute = 3 x 2 x forward MACs x images "
                 "(training FLOPs); TPU-v4 core-hours assume 137.5 TFLOP/s per core at 40% utilisation.");
  auto curves = loss_curves(pts, spec.models);
  std::optional<report::PowerLawLine> line;
  if (rep.fit.frontier) {
    report::PowerLawLine l;
    l.coefficient = rep.fit.frontier->power.a;
    l.exponent = rep.fit.frontier->power.b;
    l.x_min = rep.fit.frontier->min_flops;
    l.x_max = rep.fit.frontier->max_flops;
    l.name = "frontier fit";
    line = l;
  }
  report::Plot fig2 = report::loss_vs_compute_figure(curves, line, "training FLOPs");
  const std::string f2 = (fs::path(rep.report_dir) / "fig2_loss_vs_compute").string();
  write_file_atomic(f2 + ".svg", report::to_svg(fig2));
  report::write_png(fig2, f2 + ".png");
  html.heading("Held-out loss against pre-training compute (paper Fig. 2)");
  html.figure(report::to_svg(fig2),
              "Best held-out loss over the learning-rate grid for each model and epoch budget; dashed: the frontier "
              "power law L = a C^b.",
              "fig2_loss_vs_compute.png");
  if (rep.fit.frontier) {
    const auto& f = *rep.fit.frontier;
    html.table({"law", "a", "b (exponent)", "E", "R^2 (log)", "frontier points"},
               {{"L = a C^b", fmt("%.4g", f.power.a) + " [" + fmt("%.3g", f.power_a.lo) + ", " +
                                  fmt("%.3g", f.power_a.hi) + "]",
                 fmt("%.4f", f.power.b) + " [" + fmt("%.4f", f.power_b.lo) + ", " + fmt("%.4f", f.power_b.hi) + "]",
                 "-", fmt("%.3f", f.power.r2), std::to_string(f.frontier.size())},
                {"L = E + a C^b", f.offset ? fmt("%.4g", f.offset->a) : "-",
                 f.offset ? fmt("%.4f", f.offset->b) + " [" + fmt("%.4f", f.offset_b.lo) + ", " +
                                fmt("%.4f", f.offset_b.hi) + "]"
                          : "-",
                 f.offset ? fmt("%.4g", f.offset->E) : "-", f.offset ? fmt("%.3f", f.offset->r2) : "-",
                 std::to_string(f.frontier.size())}},
               "Frontier fits with bootstrap 95% intervals.");
  } else {
    html.paragraph("No frontier fit: " + rep.fit.frontier_error);
  }

  std::map<std::string, report::NamedCurve> lr_curves;
  for (auto& b : rep.fit.best_lrs) {
    auto& c = lr_curves[b.model];
    c.name = b.model;
    c.points.push_back({b.epochs, b.refined_lr > 0 ? b.refined_lr : b.lr});
  }
  std::vector<report::NamedCurve> lr_list;
  for (auto& m : spec.models)
    if (lr_curves.count(m)) lr_list.push_back(lr_curves[m]);
  if (!lr_list.empty()) {
    report::Plot fig3 = report::optimal_lr_figure(lr_list);
    const std::string f3 = (fs::path(rep.report_dir) / "fig3_optimal_lr").string();
    write_file_atomic(f3 + ".svg", report::to_svg(fig3));
    report::write_png(fig3, f3 + ".png");
    html.heading("Optimal learning rate against epoch budget (paper Fig. 3)");
    html.figure(report::to_svg(fig3), "Best base learning rate (batch-256 scale; parabola-refined in log LR where "
                                      "bracketed) per model and epoch budget.",
                "fig3_optimal_lr.png");
  }
  std::vector<std::vector<std::string>> lr_rows;
  for (auto& b : rep.fit.best_lrs)
    lr_rows.push_back({b.model, fmt("%g", b.epochs), fmt("%g", b.lr), fmt("%.3g", b.refined_lr), fmt("%.4f", b.loss),
                       b.interior ? "yes" : "no (grid edge)"});
  if (!lr_rows.empty())
    html.table({"model", "epochs", "best LR", "refined LR", "held-out loss", "bracketed"}, lr_rows,
               "Best learning rate per (model, epoch budget): " + std::to_string(rep.lr_bracketed) + " of " +
                   std::to_string(rep.lr_cells) + " cells bracketed (loss higher at both neighbouring LRs); the "
                   "others are flagged 'grid edge': their optimum only bounds the true one.");

  html.heading("Compute-optimal allocation and planner");
  if (rep.fit.compute_optimal) {
    const auto& co = *rep.fit.compute_optimal;
    html.table({"quantity", "exponent", "95% interval"},
               {{"N_opt ~ C^a", fmt("%.3f", co.n_exponent.value),
                 "[" + fmt("%.3f", co.n_exponent.lo) + ", " + fmt("%.3f", co.n_exponent.hi) + "]"},
                {"D_opt ~ C^b", fmt("%.3f", co.d_exponent.value),
                 "[" + fmt("%.3f", co.d_exponent.lo) + ", " + fmt("%.3f", co.d_exponent.hi) + "]"}},
               "Compute-optimal model size and training examples against compute (frontier points).");
  } else {
    html.paragraph("No compute-optimal fit: " + rep.fit.compute_optimal_error);
  }
  if (rep.plan) {
    html.paragraph("Planner recommendation for " + fmt("%g", rep.plan_factor) + "x the largest budget run (" +
                   fmt("%.3g", rep.plan->flops) + " FLOPs):");
    html.preformatted(scaling::format_plan(*rep.plan));
  } else {
    html.paragraph("No plan: " + rep.plan_error);
  }
  if (rep.plan_check) {
    html.heading("The planner checked by a real run");
    html.paragraph(rep.plan_check->verdict() + ".");
  }

  if (finetune && (!rep.fit.frontier || rep.fit.frontier->frontier.size() < 2)) {
    const std::string why = "fine-tuning skipped: it compares frontier checkpoints, and the pre-training frontier " +
                            (rep.fit.frontier ? "has " + std::to_string(rep.fit.frontier->frontier.size()) + " point"
                                              : "could not be fitted (" + rep.fit.frontier_error + ")") +
                            "; run more models or budgets";
    std::fprintf(stderr, "[study] %s\n", why.c_str());
    html.paragraph(why + ".");
  }
  if (finetune && rep.fit.frontier && rep.fit.frontier->frontier.size() >= 2) {
    rep.finetune = run_finetune_study(spec, rep.fit, *finetune);
    std::map<std::string, report::NamedCurve> ft_curves;
    std::vector<std::vector<std::string>> ft_rows;
    for (auto& c : rep.finetune->candidates) {
      auto& curve = ft_curves[c.model];
      curve.name = c.model;
      curve.points.push_back({c.pretrain_flops, 100 * c.finetune_top1_err});
      ft_rows.push_back({c.model, fmt("%g", c.epochs), fmt("%g", c.lr), fmt("%.3g", c.pretrain_flops),
                         fmt("%.4f", c.pretrain_loss), c.on_frontier ? "frontier" : "larger model, fewer epochs",
                         fmt("%.2f", 100 * c.finetune_top1_err), fmt("%.3g", c.finetune_flops)});
    }
    std::vector<report::NamedCurve> ft_list;
    for (auto& m : spec.models)
      if (ft_curves.count(m)) {
        auto c = ft_curves[m];
        std::sort(c.points.begin(), c.points.end(), [](auto& a, auto& b) { return a.x < b.x; });
        ft_list.push_back(c);
      }
    report::Plot fig1 = report::finetune_error_figure(ft_list, {}, "pre-training FLOPs");
    const std::string f1 = (fs::path(rep.report_dir) / "fig1_finetune_error").string();
    write_file_atomic(f1 + ".svg", report::to_svg(fig1));
    report::write_png(fig1, f1 + ".png");
    html.heading("Fine-tuned top-1 error against pre-training compute (paper Fig. 1)");
    html.figure(report::to_svg(fig1),
                "Each checkpoint fine-tuned on " + finetune->data + " for " + fmt("%g", finetune->epochs) +
                    " epochs with SAM (equal fine-tuning compute per model).",
                "fig1_finetune_error.png");
    html.table({"model", "pre-train epochs", "base LR", "pre-train FLOPs", "held-out loss", "candidate",
                "fine-tuned top-1 err %", "fine-tune FLOPs"},
               ft_rows);
    if (rep.finetune->reversals.empty())
      html.paragraph("At every compared compute level, the checkpoint with the lower pre-training loss also "
                     "fine-tuned better.");
    for (auto& line : rep.finetune->reversals) html.paragraph("Lowest pre-training loss is not best after fine-tuning: " + line);
  }

  std::vector<std::vector<std::string>> rows;
  scaling::TpuV4Convention tpu;
  for (auto& p : pts)
    rows.push_back({p.model, fmt("%g", p.epochs), fmt("%g", p.lr), fmt("%.4f", p.loss), fmt("%.2f", 100 * p.top1_err),
                    fmt("%.3g", p.flops), fmt("%.3g", scaling::flops_to_tpu_v4_core_hours(p.flops, tpu))});
  html.heading("All trials");
  html.table({"model", "epochs", "base LR", "held-out loss", "held-out top-1 err %", "FLOPs", "TPU-v4 core-h"}, rows);
  html.heading("All fits");
  html.preformatted(scaling::format_study_fit(rep.fit));
  html.write(rep.html_path);
  return rep;
}

}  // namespace nfscale::study
