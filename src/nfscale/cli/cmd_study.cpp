// cmd_study.cpp - `nfscale study`: the main job: sweep, fits, planner and report in one command.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/study_flags.h"
#include "nfscale/study/study_run.h"

namespace nfscale::cli {
namespace {

RegisterCommand kRegister_cmd_study(30, [](CLI::App& root) {
  auto args = std::make_shared<StudyArgs>();
  auto report_only = std::make_shared<bool>(false);
  auto do_finetune = std::make_shared<bool>(false);
  auto ft = std::make_shared<study::FinetuneStudyOptions>();
  auto* app = root.add_subcommand(
      "study",
      "The main job: sweep the study (resumable), fit the scaling laws, plan, and write the HTML report with the\n"
      "paper's figures to <out>/report/index.html. The default preset is aimed at <= 30 minutes on 2 cores.");
  add_study_flags(*app, *args);
  app->add_flag("--report-only", *report_only, "Skip the sweep; fit and report what the database holds");
  app->add_flag("--finetune", *do_finetune,
                "Also fine-tune the frontier checkpoints (and larger models trained for fewer epochs at similar\n"
                "compute) with SAM on --finetune-data, and plot fine-tuned error against pre-training compute (Fig. 1)");
  app->add_option("--finetune-data", ft->data, "Fine-tuning target data spec")->capture_default_str();
  app->add_option("--finetune-epochs", ft->epochs, "Fine-tuning epochs per checkpoint")->capture_default_str();
  app->add_option("--finetune-max", ft->max_frontier, "At most this many frontier checkpoints are fine-tuned")
      ->capture_default_str();
  app->callback([args, report_only, do_finetune, ft] {
    study::StudySpec spec = resolve_study(*args);
    study::StudyRunOptions o;
    o.sweep = args->sweep;
    o.report_only = *report_only;
    o.finetune = *do_finetune ? ft.get() : nullptr;
    study::StudyRun run = study::run_study(spec, o);
    if (run.interrupted) {
      std::fprintf(stderr, "[study] interrupted; re-run the same command to resume\n");
      throw CLI::RuntimeError(130);
    }
    const study::StudyReport& r = *run.report;
    for (const auto& f : r.families) {
      if (r.families.size() > 1) std::printf("\n== %s family ==\n", study::family_display_name(f.family).c_str());
      std::printf("%s", scaling::format_study_fit(f.fit).c_str());
    }
    if (r.comparison) std::printf("\n%s", scaling::format_comparison(*r.comparison).c_str());
    else if (!r.comparison_error.empty()) std::printf("\nNo family comparison: %s\n", r.comparison_error.c_str());
    if (!r.findings_text.empty()) std::printf("\n%s", r.findings_text.c_str());
    if (r.plan) std::printf("\nPlan for %gx the largest budget run:\n%s", r.plan_factor, scaling::format_plan(*r.plan).c_str());
    if (r.plan_check) std::printf("\nPlanner check: %s\n", r.plan_check->verdict().c_str());
    std::printf("\nReport: %s\n", r.html_path.c_str());
  });
});

}  // namespace
}  // namespace nfscale::cli
