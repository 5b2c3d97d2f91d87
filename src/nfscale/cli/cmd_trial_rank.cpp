// cmd_trial_rank.cpp - `nfscale trial-rank` (hidden): one data-parallel rank of a sweep trial, started N times by a
// worker of `nfscale sweep --trial-nproc N` (study/trial_ranks.h); joins the ranks' group and trains the trial.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/dist_flags.h"
#include "nfscale/study/trial_ranks.h"

namespace nfscale::cli {
namespace {

RegisterCommand kRegister_cmd_trial_rank(90, [](CLI::App& root) {
  auto run_dir = std::make_shared<std::string>();
  auto* app = root.add_subcommand("trial-rank", "Internal: one rank of a sweep trial (nfscale sweep --trial-nproc)");
  app->group("");  // not listed in --help
  app->add_option("--run-dir", *run_dir, "The trial's run dir, holding the trial-config.json its worker wrote")
      ->required();
  app->callback([run_dir] {
    run_ranks(DistArgs{}, [&](const train::TrainHooks& hooks) { study::train_trial_rank(*run_dir, hooks); });
  });
});

}  // namespace
}  // namespace nfscale::cli
