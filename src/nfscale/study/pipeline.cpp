// pipeline.cpp - fits, plan, figures and the HTML report of a study, from its results database.
#include "nfscale/study/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nfscale/scaling/text_format.h"
#include "nfscale/report/figures.h"
#include "nfscale/report/html.h"
#include "nfscale/report/plot.h"
#include "nfscale/scaling/compute.h"
#include "nfscale/scaling/findings.h"
#include "nfscale/scaling/published.h"
#include "nfscale/store/results_store.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/models/family.h"
#include "nfscale/util/error.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {
using scaling::fmt;

std::string points_csv(const std::vector<scaling::RunPoint>& pts) {
  std::ostringstream out;
  out << "model,params,examples,flops,loss,epochs,lr,top1_err,seed\n";
  out.precision(12);
  for (auto& p : pts)
    out << p.model << "," << p.params << "," << p.examples << "," << p.flops << "," << p.loss << "," << p.epochs
        << "," << p.lr << "," << p.top1_err << "," << p.seed << "\n";
  return out.str();
}

// Per model: (compute, loss of the best LR) for each epoch budget, in budget order. The best LR has the lowest
// mean loss over seeds; a point repeated under several seeds shows their mean with the min..max spread as an
// error bar. Each point's tooltip names its trial(s).
std::vector<report::NamedCurve> loss_curves(const std::vector<scaling::RunPoint>& pts,
                                            const std::vector<std::string>& model_order) {
  struct Cell {
    double flops = 0, sum = 0, lo = INFINITY, hi = -INFINITY;
    int n = 0;
    double mean() const { return sum / n; }
  };
  // model -> epochs -> lr -> losses over seeds
  std::map<std::string, std::map<double, std::map<double, Cell>>> cells;
  for (auto& p : pts) {
    Cell& c = cells[p.model][p.epochs][p.lr];
    c.flops = std::max(c.flops, p.flops);
    c.sum += p.loss;
    c.lo = std::min(c.lo, p.loss);
    c.hi = std::max(c.hi, p.loss);
    c.n++;
  }
  std::vector<report::NamedCurve> curves;
  for (auto& m : model_order) {
    if (!cells.count(m)) continue;
    report::NamedCurve curve;
    curve.name = m;
    for (auto& [e, by_lr] : cells[m]) {
      auto best = std::min_element(by_lr.begin(), by_lr.end(),
                                   [](auto& a, auto& b) { return a.second.mean() < b.second.mean(); });
      const Cell& c = best->second;
      std::string tip = report::trial_tooltip(m, e, best->first, c.mean(), c.flops);
      if (c.n > 1) {
        tip += " (mean of " + std::to_string(c.n) + " seeds, " + fmt("%.4f", c.lo) + ".." + fmt("%.4f", c.hi) + ")";
        curve.points.emplace_back(c.flops, c.mean(), c.lo, c.hi, tip);
      } else {
        curve.points.emplace_back(c.flops, c.mean(), tip);
      }
    }
    curves.push_back(curve);
  }
  return curves;
}

// "0.1234 [0.1100, 0.1300]", or the value alone without an interval.
std::string estimate_text(const scaling::Estimate& e, const char* f = "%.4f") {
  if (!std::isfinite(e.lo) || !std::isfinite(e.hi)) return fmt(f, e.value);
  return fmt(f, e.value) + " [" + fmt(f, e.lo) + ", " + fmt(f, e.hi) + "]";
}

// exp of a log-ratio estimate, as estimate_text prints it.
std::string ratio_text(const scaling::Estimate& log_ratio) {
  scaling::Estimate r;
  r.value = std::exp(log_ratio.value);
  r.lo = std::exp(log_ratio.lo);
  r.hi = std::exp(log_ratio.hi);
  return estimate_text(r, "%.3f");
}

// The comparison section of a two-family study: the verdict, both frontiers on one figure, a table at compute
// levels, the exponents side by side, and the paper's published points at full scale.
void write_comparison_section(report::HtmlReport& html, const StudyReport& rep, const std::string& report_dir) {
  if (rep.families.size() < 2) {  // e.g. --report-only while only one family has finished trials
    html.heading("The families at equal compute");
    html.paragraph("No comparison: " + rep.comparison_error + ".");
    return;
  }
  const std::string a = family_display_name(rep.families[0].family), b = family_display_name(rep.families[1].family);
  html.heading(a + " against " + b + " at equal compute");
  std::vector<report::FamilyFrontier> ff;
  for (const auto& f : rep.families) {
    report::FamilyFrontier x;
    x.name = family_display_name(f.family);
    // Every (model, budget) cell at its best LR (mean over seeds), and the frontier of the fit.
    for (const auto& bl : f.fit.best_lrs)
      for (const auto& p : f.points)
        if (p.model == bl.model && p.epochs == bl.epochs && p.lr == bl.lr) {
          x.runs.emplace_back(p.flops, bl.loss, report::trial_tooltip(p.model, p.epochs, p.lr, bl.loss, p.flops));
          break;
        }
    if (f.fit.frontier) {
      const auto& fr = *f.fit.frontier;
      for (const auto& p : fr.frontier)
        x.frontier.emplace_back(p.flops, p.loss, report::trial_tooltip(p.model, p.epochs, p.lr, p.loss, p.flops));
      report::PowerLawLine l;
      l.coefficient = fr.power.a;
      l.exponent = fr.power.b;
      l.x_min = fr.min_flops;
      l.x_max = fr.max_flops;
      for (int i = 0; i <= 24; ++i) {
        const double c = l.x_min * std::pow(l.x_max / l.x_min, i / 24.0);
        const auto e = fr.predict_power(c);
        if (std::isfinite(e.lo) && std::isfinite(e.hi)) l.interval.push_back({c, e.lo, e.hi});
      }
      x.fit = l;
    }
    ff.push_back(std::move(x));
  }
  report::Plot fig = report::family_frontiers_figure(ff, "training FLOPs");
  report::write_figure(fig, (fs::path(report_dir) / "fig0_families").string());
  if (rep.comparison) html.paragraph("Verdict: " + rep.comparison->verdict);
  else html.paragraph("No comparison: " + rep.comparison_error + ".");
  html.figure(report::to_svg(fig),
              "Both families on the same data, split and FLOP convention, each with its own optimiser and LR search: "
              "small dots are every (model, budget) cell at its best LR, joined markers the compute frontier, dashed "
              "the frontier power law L = a C^b with its bootstrap interval (band).",
              "fig0_families.png", "fig0_families.pdf");
  if (rep.comparison && !rep.comparison->levels.empty()) {
    const auto& c = *rep.comparison;
    scaling::TpuV4Convention tpu;
    auto best = [](const scaling::BestByCompute& x) {
      if (x.model.empty()) return std::string("-");
      return x.model + ", " + fmt("%g", x.epochs) + " ep: " + fmt("%.4f", x.loss) +
             (std::isfinite(x.top1_err) ? " / " + fmt("%.2f", 100 * x.top1_err) + "%" : std::string());
    };
    std::vector<std::vector<std::string>> rows;
    for (const auto& l : c.levels)
      rows.push_back({fmt("%.3g", l.flops), fmt("%.3g", scaling::flops_to_tpu_v4_core_hours(l.flops, tpu)),
                      estimate_text(l.fitted_a), estimate_text(l.fitted_b),
                      ratio_text(l.log_ratio),
                      best(l.best_a), best(l.best_b),
                      l.leader < 0 ? a : l.leader > 0 ? b : "indistinguishable"});
    html.table({"compute (FLOPs)", "TPU-v4 core-h", a + " fitted loss [95%]", b + " fitted loss [95%]",
                "loss ratio " + a + "/" + b + " [95%]", a + " best reached: loss / top-1 err",
                b + " best reached: loss / top-1 err", "ahead"},
               rows,
               "At compute levels spaced evenly in log scale over the range both frontiers cover: each family's "
               "fitted frontier loss and its bootstrap interval, their ratio (interval from paired bootstrap "
               "replicates of the two fits), and the best cell each family actually reached with at most that "
               "compute (held-out loss and top-1 error). 'ahead' needs the ratio's interval to exclude 1.");
  }
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : rep.families) {
      if (!f.fit.frontier) {
        rows.push_back({family_display_name(f.family), "-", "-", "-", "no fit: " + f.fit.frontier_error});
        continue;
      }
      const auto& fr = *f.fit.frontier;
      std::string models;
      for (const auto& p : fr.frontier)
        if (models.find(p.model) == std::string::npos) models += (models.empty() ? "" : ", ") + p.model;
      rows.push_back({family_display_name(f.family), estimate_text(fr.power_b), fmt("%.4g", fr.power.a),
                      fmt("%.3f", fr.power.r2),
                      std::to_string(fr.frontier.size()) + " points (" + models + "), " + fmt("%.3g", fr.min_flops) +
                          " to " + fmt("%.3g", fr.max_flops) + " FLOPs"});
    }
    if (rep.comparison)
      rows.push_back({"difference " + a + " - " + b, estimate_text(rep.comparison->exponent_diff), "-", "-",
                      "interval from paired bootstrap replicates"});
    html.table({"family", "exponent b of L = a C^b [95%]", "a", "R^2 (log)", "frontier"}, rows,
               "The fitted exponents side by side.");
  }
  // The paper's headline points, as published (a different task and scale: ImageNet after JFT-4B pre-training).
  std::map<std::string, report::NamedCurve> by_family;
  for (const auto& r : scaling::published_results()) {
    auto& curve = by_family[r.family];
    curve.name = family_display_name(r.family) + " (published)";
    curve.points.emplace_back(r.core_hours, r.top1,
                              r.label + ": " + fmt("%.2f", r.top1) + "% at ~" + fmt("%.0f", r.core_hours / 1e3) +
                                  "k TPU-v4 core hours (" + r.note + "; published, not measured)");
    curve.points.back().label = r.label + fmt(" %.2f%%", r.top1);
  }
  std::vector<report::NamedCurve> pub;
  for (const std::string fam : {"nfnet", "vit"})
    if (by_family.count(fam)) pub.push_back(by_family[fam]);
  report::Plot paper = report::published_results_figure(pub, "published numbers, not measured by nfscale");
  report::write_figure(paper, (fs::path(report_dir) / "fig0b_paper_scale").string());
  html.figure(report::to_svg(paper),
              "At paper scale, as published (not measured here): " + scaling::published_source() +
                  ". NFNet-F7+ 90.3% (90.4% with repeated augmentation) at ~110k core hours; ViT-g/14 90.2% at "
                  "~120k, ViT-G/14 90.45% at ~280k, SoViT-400m/14 90.3% at ~130k.",
              "fig0b_paper_scale.png", "fig0b_paper_scale.pdf");
}
}  // namespace

std::string family_display_name(const std::string& family) {
  if (family == "nfnet") return "NFNet";
  if (family == "vit") return "ViT";
  return family;
}

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
  const std::vector<scaling::RunPoint> all_pts = study_points(spec.db_path(), spec.name);
  {
    auto c = store::open_results_store(spec.db_path())->counts(spec.name);
    rep.trials_done = c.done;
    rep.trials_failed = c.failed;
  }
  write_file_atomic((fs::path(rep.report_dir) / "points.csv").string(), points_csv(all_pts));
  // Each family is fitted on its own points (its own frontier, LR optima, exponents); the single-family sections
  // below describe the primary family, the first of the study's families with finished trials.
  for (const std::string& family : spec.families()) {
    FamilyStudyFit f;
    f.family = family;
    for (const auto& p : all_pts)
      if (models::family_of(p.model).name() == family) f.points.push_back(p);
    if (f.points.empty()) continue;
    f.fit = scaling::fit_study(f.points, fit_options);
    rep.families.push_back(std::move(f));
  }
  require(!rep.families.empty(), "study '" + spec.name + "': its finished trials belong to none of its models' families");
  rep.primary_family = rep.families.front().family;
  const std::vector<scaling::RunPoint>& pts = rep.families.front().points;
  const StudySpec pspec = spec.for_family(rep.primary_family);
  rep.fit = rep.families.front().fit;
  write_file_atomic((fs::path(rep.report_dir) / "fit.json").string(), scaling::to_json(rep.fit).dump(2) + "\n");
  const bool mixed = spec.families().size() > 1;
  if (mixed) {
    if (rep.families.size() < 2) {
      rep.comparison_error = "only the " + family_display_name(rep.primary_family) + " family has finished trials";
    } else if (!rep.families[0].fit.frontier || !rep.families[1].fit.frontier) {
      const auto& f = rep.families[0].fit.frontier ? rep.families[1] : rep.families[0];
      rep.comparison_error = family_display_name(f.family) + " has no frontier fit (" + f.fit.frontier_error + ")";
    } else {
      // Labelled by display name ("NFNet", "ViT"): the verdict sentence and comparison.json speak of those.
      rep.comparison = scaling::compare_families(
          {family_display_name(rep.families[0].family), &*rep.families[0].fit.frontier, rep.families[0].points},
          {family_display_name(rep.families[1].family), &*rep.families[1].fit.frontier, rep.families[1].points});
      if (!rep.comparison->error.empty()) rep.comparison_error = rep.comparison->error;
    }
    nlohmann::json cj = rep.comparison ? scaling::to_json(*rep.comparison) : nlohmann::json{{"error", rep.comparison_error}};
    for (const auto& f : rep.families) cj["fits"][f.family] = scaling::to_json(f.fit);
    write_file_atomic((fs::path(rep.report_dir) / "comparison.json").string(), cj.dump(2) + "\n");
  }

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
  std::string families_text;
  for (const auto& f : spec.families()) families_text += (families_text.empty() ? "" : " and ") + family_display_name(f);
  html.paragraph("Scaling study of " + families_text + " models after Smith et al. (2023), 'ConvNets Match Vision "
                 "Transformers at Scale'. "
                 "Models: " + std::to_string(spec.models.size()) + ", epoch budgets: " +
                 std::to_string(spec.all_epochs().size()) + " (" + std::to_string(spec.cell_count()) +
                 " model x budget x seed cells), trials done: " + std::to_string(rep.trials_done) +
                 ", failed (diverged): " + std::to_string(rep.trials_failed) + ". Data: " + spec.base.data +
                 " at " + std::to_string(spec.base.resolution) + " px, held-out " +
                 std::to_string(spec.base.holdout) + " images. Compute = 3 x 2 x forward MACs x images "
                 "(training FLOPs); TPU-v4 core-hours assume 137.5 TFLOP/s per core at 40% utilisation.");
  if (mixed) {
    write_comparison_section(html, rep, rep.report_dir);
    html.paragraph("The sections below describe the " + family_display_name(rep.primary_family) +
                   " family (its figures, LR optima, planner and findings); the other family's fits are under "
                   "'All fits'.");
  }
  auto curves = loss_curves(pts, pspec.models);
  std::optional<report::PowerLawLine> line;
  if (rep.fit.frontier) {
    report::PowerLawLine l;
    l.coefficient = rep.fit.frontier->power.a;
    l.exponent = rep.fit.frontier->power.b;
    l.x_min = rep.fit.frontier->min_flops;
    l.x_max = rep.fit.frontier->max_flops;
    l.name = "frontier fit";
    // The bootstrap interval of the fitted curve, as a band: 24 computes spaced evenly in log space.
    for (int i = 0; i <= 24; ++i) {
      const double x = l.x_min * std::pow(l.x_max / l.x_min, i / 24.0);
      const auto e = rep.fit.frontier->predict_power(x);
      if (std::isfinite(e.lo) && std::isfinite(e.hi)) l.interval.push_back({x, e.lo, e.hi});
    }
    line = l;
  }
  report::Plot fig2 = report::loss_vs_compute_figure(curves, line, "training FLOPs");
  const std::string f2 = (fs::path(rep.report_dir) / "fig2_loss_vs_compute").string();
  report::write_figure(fig2, f2);
  html.heading("Held-out loss against pre-training compute (paper Fig. 2)");
  html.figure(report::to_svg(fig2),
              "Best held-out loss over the learning-rate grid for each model and epoch budget; dashed: the frontier "
              "power law L = a C^b, grey: its bootstrap interval. Hover a point for its trial.",
              "fig2_loss_vs_compute.png", "fig2_loss_vs_compute.pdf");
  if (line) {
    report::Plot res = report::residual_figure(curves, *line, "training FLOPs");
    const std::string fr = (fs::path(rep.report_dir) / "fig2b_residuals").string();
    report::write_figure(res, fr);
    html.figure(report::to_svg(res),
                "Residuals ln(loss / fit) of the same points against the frontier power law; points above zero lie "
                "off the frontier.",
                "fig2b_residuals.png", "fig2b_residuals.pdf");
  }
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
    c.points.emplace_back(b.epochs, b.refined_lr > 0 ? b.refined_lr : b.lr,
                          report::trial_tooltip(b.model, b.epochs, b.lr, b.loss) +
                              (b.interior ? "" : " (grid edge)"));
  }
  std::vector<report::NamedCurve> lr_list;
  for (auto& m : pspec.models)
    if (lr_curves.count(m)) lr_list.push_back(lr_curves[m]);
  if (!lr_list.empty()) {
    report::Plot fig3 = report::optimal_lr_figure(lr_list);
    const std::string f3 = (fs::path(rep.report_dir) / "fig3_optimal_lr").string();
    report::write_figure(fig3, f3);
    html.heading("Optimal learning rate against epoch budget (paper Fig. 3)");
    html.figure(report::to_svg(fig3), "Best base learning rate (batch-256 scale; parabola-refined in log LR where "
                                      "bracketed) per model and epoch budget.",
                "fig3_optimal_lr.png", "fig3_optimal_lr.pdf");
    std::vector<report::LrSlopeCurve> slopes;
    for (auto& c : lr_list) {
      report::LrSlopeCurve s{c.name, c.points, std::nullopt};
      for (auto& f : rep.fit.lr_slopes)
        if (f.model == c.name) s.fit = report::PowerLawLine{f.law.a, f.law.b, f.min_epochs, f.max_epochs, "", {}};
      slopes.push_back(s);
    }
    report::Plot fig3b = report::lr_slope_figure(slopes);
    const std::string f3b = (fs::path(rep.report_dir) / "fig3b_lr_slopes").string();
    report::write_figure(fig3b, f3b);
    html.figure(report::to_svg(fig3b), "Optimal learning rate against epoch budget with the power law "
                                       "lr = a * epochs^b fitted per model (dashed); the legend gives the slope b.",
                "fig3b_lr_slopes.png", "fig3b_lr_slopes.pdf");
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
    rep.finetune = run_finetune_study(pspec, rep.fit, *finetune);
    for (size_t i = 1; i < rep.families.size(); ++i) {  // the other family's checkpoints, on the same Fig. 1
      const FamilyStudyFit& f = rep.families[i];
      if (!f.fit.frontier || f.fit.frontier->frontier.size() < 2) continue;
      FinetuneStudy more = run_finetune_study(spec.for_family(f.family), f.fit, *finetune);
      rep.finetune->candidates.insert(rep.finetune->candidates.end(), more.candidates.begin(), more.candidates.end());
      rep.finetune->reversals.insert(rep.finetune->reversals.end(), more.reversals.begin(), more.reversals.end());
    }
    std::map<std::string, report::NamedCurve> ft_curves;
    std::vector<std::vector<std::string>> ft_rows;
    for (auto& c : rep.finetune->candidates) {
      auto& curve = ft_curves[c.model];
      curve.name = c.model;
      curve.points.emplace_back(c.pretrain_flops, 100 * c.finetune_top1_err,
                                c.model + ", " + fmt("%g", c.epochs) + " epochs, LR " + fmt("%g", c.lr) +
                                    ": fine-tuned top-1 error " + fmt("%.2f", 100 * c.finetune_top1_err) + "%");
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
    report::write_figure(fig1, f1);
    html.heading("Fine-tuned top-1 error against pre-training compute (paper Fig. 1)");
    html.figure(report::to_svg(fig1),
                "Each checkpoint fine-tuned on " + finetune->data + " for " + fmt("%g", finetune->epochs) +
                    " epochs with SAM (equal fine-tuning compute per model).",
                "fig1_finetune_error.png", "fig1_finetune_error.pdf");
    html.table({"model", "pre-train epochs", "base LR", "pre-train FLOPs", "held-out loss", "candidate",
                "fine-tuned top-1 err %", "fine-tune FLOPs"},
               ft_rows);
    if (rep.finetune->reversals.empty())
      html.paragraph("At every compared compute level, the checkpoint with the lower pre-training loss also "
                     "fine-tuned better.");
    for (auto& line : rep.finetune->reversals) html.paragraph("Lowest pre-training loss is not best after fine-tuning: " + line);
  }

  // The paper's four findings, each a verdict computed from the intervals.
  {
    std::vector<scaling::FinetunePoint> ft_points;
    if (rep.finetune) {
      std::map<std::string, double> params;
      for (auto& p : pts) params[p.model] = p.params;
      for (auto& c : rep.finetune->candidates)
        if (std::find(pspec.models.begin(), pspec.models.end(), c.model) != pspec.models.end())  // primary family
        ft_points.push_back({c.model, params.count(c.model) ? params[c.model] : scaling::kMissing, c.epochs,
                             c.pretrain_flops, c.pretrain_loss, c.finetune_top1_err});
    }
    scaling::Findings findings = scaling::study_findings(rep.fit, ft_points);
    rep.findings_text = scaling::format_findings(findings);
    write_file_atomic((fs::path(rep.report_dir) / "findings.json").string(),
                      scaling::to_json(findings).dump(2) + "\n");
    html.heading(std::string("The paper's four findings") +
                 (mixed ? " (" + family_display_name(rep.primary_family) + " family)" : ""));
    auto row = [](const std::string& what, scaling::Verdict v, const std::string& error, const std::string& reason) {
      return std::vector<std::string>{what, error.empty() ? scaling::verdict_name(v) : "not computed",
                                      error.empty() ? reason : error};
    };
    html.table({"finding", "verdict", "numbers and reason"},
               {row("(1) the frontier is a straight line in log-log axes", findings.linearity.verdict,
                    findings.linearity_error, findings.linearity.reason),
                row("(2) model size and epochs grow with compute, at the same rate", findings.growth.verdict,
                    findings.growth_error, findings.growth.reason),
                row("(3) optimal LR: flat at small budgets, falling with epochs, faster for larger models",
                    findings.lr.verdict, findings.lr_error, findings.lr.reason),
                row("(4) fine-tuning prefers larger models with fewer epochs", findings.finetune.verdict,
                    findings.finetune_error,
                    finetune ? findings.finetune.reason : "not run: add --finetune to `nfscale study`")},
               "Verdicts from the 95% intervals; rules in docs/scaling.md. Bracketed LR cells: " +
                   std::to_string(rep.lr_bracketed) + " of " + std::to_string(rep.lr_cells) + ".");
  }

  std::vector<std::vector<std::string>> rows;
  scaling::TpuV4Convention tpu;
  for (auto& p : all_pts)
    rows.push_back({p.model, fmt("%g", p.epochs), fmt("%g", p.lr), fmt("%.4f", p.loss), fmt("%.2f", 100 * p.top1_err),
                    fmt("%.3g", p.flops), fmt("%.3g", scaling::flops_to_tpu_v4_core_hours(p.flops, tpu))});
  html.heading("All trials");
  html.table({"model", "epochs", "base LR", "held-out loss", "held-out top-1 err %", "FLOPs", "TPU-v4 core-h"}, rows);
  html.heading("All fits");
  for (const auto& f : rep.families) {
    if (mixed) html.paragraph(family_display_name(f.family) + " family:");
    html.preformatted(scaling::format_study_fit(f.fit));
  }
  if (rep.comparison) html.preformatted(scaling::format_comparison(*rep.comparison));
  html.write(rep.html_path);
  return rep;
}

}  // namespace nfscale::study
