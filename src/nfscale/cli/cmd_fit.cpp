// cmd_fit.cpp - `nfscale fit`: fits the scaling study (best LRs, LR-vs-epochs slopes, compute frontier power laws,
// compute-optimal exponents, Chinchilla Approach 3) to run points from a CSV or a study's results database and prints tables or JSON.
// Every source of points (CSV or results database) feeds the same scaling::fit_study.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "nfscale/cli/command_registry.h"
#include "nfscale/scaling/findings.h"
#include "nfscale/cli/points_source.h"
#include "nfscale/scaling/fits.h"
#include "nfscale/scaling/points.h"
#include "nfscale/util/atomic_file.h"

namespace nfscale::cli {
namespace {

struct FitCliOptions {
  PointsSource source;
  bool json = false;
  int bootstrap = 1000;
  uint64_t seed = 0;
  double level = 0.95;
  bool no_chinchilla = false;
  bool coarse_chinchilla = false;
  std::string out;
};

void run(const FitCliOptions& o) {
  std::vector<scaling::RunPoint> points = load_points(o.source);
  scaling::FitOptions fo;
  fo.bootstrap.resamples = o.bootstrap;
  fo.bootstrap.seed = o.seed;
  fo.bootstrap.level = o.level;
  fo.fit_chinchilla = !o.no_chinchilla;
  fo.chinchilla.coarse_grid = o.coarse_chinchilla;
  scaling::StudyFit fit = scaling::fit_study(points, fo);
  const scaling::Findings findings = scaling::study_findings(fit, {});
  nlohmann::json j = scaling::to_json(fit);
  j["findings"] = scaling::to_json(findings);
  j["source"] = describe(o.source);
  if (!o.out.empty()) write_file_atomic(o.out, j.dump(2) + "\n");
  if (o.json)
    std::cout << j.dump(2) << "\n";
  else
    std::cout << "Points: " << describe(o.source) << "\n" << scaling::format_study_fit(fit) << "\n"
              << scaling::format_findings(findings);
}

const RegisterCommand kRegister_cmd_fit(60, [](CLI::App& root) {
  auto opts = std::make_shared<FitCliOptions>();
  auto* cmd = root.add_subcommand(
      "fit",
      "Fit scaling laws to run points: best LR per (model, epochs), LR-vs-epochs slopes, the compute frontier\n"
      "(L = a C^b and L = E + a C^b), compute-optimal N and D exponents and Chinchilla Approach 3, with bootstrap\n"
      "intervals. CSV columns: model, params, examples, flops, loss, epochs, lr, top1_err, seed (docs/scaling.md).");
  add_points_source_flags(*cmd, opts->source);
  cmd->add_flag("--json", opts->json, "Print JSON instead of tables");
  cmd->add_option("--bootstrap", opts->bootstrap, "Bootstrap resamples for the intervals (0 = none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", opts->seed, "Seed of the bootstrap resampling");
  cmd->add_option("--level", opts->level, "Central interval level")->check(CLI::Range(0.5, 0.999));
  cmd->add_flag("--no-chinchilla", opts->no_chinchilla, "Skip the Chinchilla Approach 3 fit");
  cmd->add_flag("--coarse-chinchilla", opts->coarse_chinchilla,
                "Use a 243-start initialisation grid for Chinchilla instead of Hoffmann et al.'s 4500 starts");
  cmd->add_option("--out", opts->out, "Also write the JSON to this file (atomically)");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace nfscale::cli
