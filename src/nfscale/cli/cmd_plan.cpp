// cmd_plan.cpp - `nfscale plan`: recommend model, epoch budget and learning rate for a compute budget.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/points_source.h"
#include "nfscale/scaling/fits.h"
#include "nfscale/scaling/planner.h"
#include "nfscale/study/pipeline.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {
namespace {

struct PlanArgs {
  PointsSource source;
  double budget = 0;
  std::string unit = "flops";
  double flops_per_second = 0;  // 0 = measured from the study's trials (FLOPs / seconds)
  double utilisation = 0.4;
  bool json = false;
};

RegisterCommand kRegister_cmd_plan(70, [](CLI::App& root) {
  auto a = std::make_shared<PlanArgs>();
  auto* app = root.add_subcommand(
      "plan",
      "Recommend a model, an epoch budget and a learning rate for a compute budget, with the predicted held-out\n"
      "loss and its 95% interval, from a fitted study (see docs/scaling.md for the method).");
  add_points_source_flags(*app, a->source);
  app->add_option("--budget", a->budget, "Compute budget, in --unit")->required()->check(CLI::PositiveNumber);
  app->add_option("--unit", a->unit, "Budget unit: flops, tpu-v4-core-hours, or seconds (on this machine)")
      ->capture_default_str();
  app->add_option("--flops-per-second", a->flops_per_second,
                  "Training FLOP/s of this machine for --unit seconds (default: measured from the study's trials)");
  app->add_option("--tpu-utilisation", a->utilisation, "Assumed TPU-v4 utilisation for core-hour conversions")
      ->capture_default_str()->check(CLI::Range(0.01, 1.0));
  app->add_flag("--json", a->json, "Print JSON");
  app->callback([a] {
    auto points = load_points(a->source);
    scaling::StudyFit fit = scaling::fit_study(points);
    double dataset_size = 0;
    auto models = study::planner_models(points, &dataset_size);
    scaling::Budget b;
    b.amount = a->budget;
    b.unit = scaling::parse_budget_unit(a->unit);
    b.tpu.utilisation = a->utilisation;
    double fps = a->flops_per_second;
    if (fps <= 0 && !a->source.db.empty()) {
      // Measured rate of this machine: total training FLOPs / total training seconds over the study's trials.
      fps = study::measured_flops_per_second(a->source.db, a->source.study);
    }
    if (fps > 0) b.local_flops_per_second = fps;
    scaling::PlanOptions po;
    po.dataset_size = dataset_size;
    scaling::Plan plan = scaling::plan_budget(fit, models, b, po);
    if (a->json)
      std::printf("%s\n", scaling::to_json(plan).dump(2).c_str());
    else
      std::printf("%s", scaling::format_plan(plan).c_str());
  });
});

}  // namespace
}  // namespace nfscale::cli
