// figures.h - the scaling study's figures as Plots, built from data the caller supplies: paper Figs. 1-3, the
// residuals of the frontier fit, and the optimal-LR slope per model.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "nfscale/report/plot.h"

namespace nfscale::report {

// One model's points (x, y), e.g. (compute, held-out loss) for each epoch budget. A point may carry a y interval
// (drawn as an error bar, e.g. the spread over seeds) and a tooltip (see trial_tooltip).
struct NamedCurve {
  std::string name;
  std::vector<Point> points;
};

// One point of a fitted curve's interval: at x, the curve lies in [lo, hi] (e.g. a bootstrap percentile interval).
struct IntervalPoint {
  double x = 0, lo = 0, hi = 0;
};

// y = coefficient * x^exponent over [x_min, x_max]; drawn as a dashed line (straight on log-log axes), with its
// interval as a translucent band when `interval` is given (points in any order, inside or beyond the x range).
struct PowerLawLine {
  double coefficient = 1.0;
  double exponent = 0.0;
  double x_min = 1.0, x_max = 10.0;
  std::string name = "compute-optimal fit";
  std::vector<IntervalPoint> interval;
};

// Hover text of one trial, e.g. "F1, 4 epochs, LR 0.8: loss 0.4123 at 1.2e15 FLOPs" (compute left out if <= 0).
std::string trial_tooltip(const std::string& model, double epochs, double lr, double loss, double compute = 0,
                          const std::string& compute_unit = "FLOPs");

// Fig. 2: held-out loss vs pre-training compute, one curve per model, plus the frontier power-law fit and its
// interval band. The annotation states the fit ("fit: L = 2.31 * C^-0.048"). compute_unit names the x unit.
Plot loss_vs_compute_figure(const std::vector<NamedCurve>& per_model, const std::optional<PowerLawLine>& frontier,
                            const std::string& compute_unit = "FLOPs");

// Fig. 3: optimal learning rate vs epoch budget, one curve per model. An axis whose distinct values are few
// (2..12) and round (0.25, 0.5, 1.6) is ticked at those values; otherwise ticks are automatic (1-2-5).
Plot optimal_lr_figure(const std::vector<NamedCurve>& per_model);

// Optimal LR vs epoch budget per model (markers) with the fitted power law lr = a * epochs^b of each model as a
// dashed line in the model's colour; the legend lists the fits with their slope b ("F1, slope -0.31"). Models
// without a fit show their points only ("F7, no fit").
struct LrSlopeCurve {
  std::string name;
  std::vector<Point> points;  // (epoch budget, optimal LR)
  std::optional<PowerLawLine> fit;
};
Plot lr_slope_figure(const std::vector<LrSlopeCurve>& per_model);

// Residuals of the frontier fit: ln(loss) - ln(fit(compute)) against compute (log x, linear y), markers per
// model, a dashed zero line, and the fit's interval (if given) as a band ln(lo / fit) .. ln(hi / fit).
// Points with non-positive values are left out. Tooltips get the residual appended.
Plot residual_figure(const std::vector<NamedCurve>& per_model, const PowerLawLine& fit,
                     const std::string& compute_unit = "FLOPs");

// Fig. 1: fine-tuned top-1 error vs pre-training compute, one curve per model; `references` (e.g. published ViT
// numbers) are drawn as markers only.
Plot finetune_error_figure(const std::vector<NamedCurve>& per_model, const std::vector<NamedCurve>& references = {},
                           const std::string& compute_unit = "FLOPs");

// Two (or more) model families on one loss-vs-compute figure (the equal-compute comparison): per family, in its
// own colour, every run as a small unjoined marker, its compute frontier as markers joined by a line, and its
// frontier power law as a dashed line with its interval band. Legend: "<family> frontier", "<family> fit: L = a
// C^b". Needs at least one family; a family without a fit shows its points only.
struct FamilyFrontier {
  std::string name;
  std::vector<Point> runs;      // (compute, loss) of every (model, budget) cell at its best LR
  std::vector<Point> frontier;  // the compute frontier of those cells
  std::optional<PowerLawLine> fit;
};
Plot family_frontiers_figure(const std::vector<FamilyFrontier>& families, const std::string& compute_unit = "FLOPs");

// Published results at paper scale (not measured here): x = pre-training compute in TPU-v4 core hours (log), y =
// ImageNet top-1 accuracy in % (linear); one marker series per family, each point's tooltip naming the result.
// `note` becomes the annotation (say where the numbers come from and that they are not measurements).
Plot published_results_figure(const std::vector<NamedCurve>& per_family, const std::string& note);

}  // namespace nfscale::report
