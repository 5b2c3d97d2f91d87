// figures.h - the scaling study's figures as Plots, built from data the caller supplies (paper Figs. 1-3).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "nfscale/report/plot.h"

namespace nfscale::report {

// One model's points (x, y), e.g. (compute, held-out loss) for each epoch budget.
struct NamedCurve {
  std::string name;
  std::vector<Point> points;
};

// y = coefficient * x^exponent over [x_min, x_max]; drawn as a dashed line (straight on log-log axes).
struct PowerLawLine {
  double coefficient = 1.0;
  double exponent = 0.0;
  double x_min = 1.0, x_max = 10.0;
  std::string name = "compute-optimal fit";
};

// Fig. 2: held-out loss vs pre-training compute, one curve per model, plus the frontier power-law fit.
// The annotation states the fit ("L = 2.31 C^-0.048"). compute_unit names the x axis unit.
Plot loss_vs_compute_figure(const std::vector<NamedCurve>& per_model, const std::optional<PowerLawLine>& frontier,
                            const std::string& compute_unit = "FLOPs");

// Fig. 3: optimal learning rate vs epoch budget, one curve per model. Axis ticks sit at the epoch budgets and
// learning rates present in the data (a factor-of-2 grid), so the labels read 0.25, 0.5, ... and 0.4, 0.8, 1.6.
Plot optimal_lr_figure(const std::vector<NamedCurve>& per_model);

// Fig. 1: fine-tuned top-1 error vs pre-training compute, one curve per model; `references` (e.g. published ViT
// numbers) are drawn as markers only.
Plot finetune_error_figure(const std::vector<NamedCurve>& per_model, const std::vector<NamedCurve>& references = {},
                           const std::string& compute_unit = "FLOPs");

}  // namespace nfscale::report
