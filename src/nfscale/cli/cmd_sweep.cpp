// cmd_sweep.cpp - `nfscale sweep`: run (or resume) a study's trials into its results database.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/study_flags.h"
#include "nfscale/store/store_location.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {
namespace {

RegisterCommand kRegister_cmd_sweep(40, [](CLI::App& root) {
  auto args = std::make_shared<StudyArgs>();
  auto* app = root.add_subcommand(
      "sweep",
      "Run a study's trials (models x epoch budgets x learning rates x seeds) into its results store (--db).\n"
      "Resumable: re-running the same command after a kill finishes unfinished trials from their checkpoints and\n"
      "never repeats a finished one. Several workers (--workers, or separate processes) can share one database.");
  add_study_flags(*app, *args);
  app->add_option("--then-study-file", args->then_study_file,
                  "Internal, with --worker-only: once the first study has no trial left, work on this registered "
                  "study's (the planner check's worker helps with the seed repeats)")
      ->check(CLI::ExistingFile)
      ->group("");
  app->callback([args] {
    if (!args->then_study_file.empty() && !args->worker_only)
      throw UserError("sweep: --then-study-file is for --worker-only workers (the planner check's); run the two "
                      "studies one after the other instead");
    // A worker started by run_sweep prints nothing per trial: the spawning process prints the whole study's progress.
    study::SweepOptions options = args->sweep;
    if (args->worker_only) options.verbose = false;
    const auto run = [&](const study::StudySpec& spec) {
      study::SweepSummary s = args->worker_only ? study::run_worker(spec, options) : study::run_sweep(spec, options);
      std::fprintf(stderr, "[sweep] study '%s': %lld done, %lld failed, %lld pending, %lld running; database %s\n",
                   spec.name.c_str(), (long long)s.done, (long long)s.failed, (long long)s.pending,
                   (long long)s.running, store::redact_location(spec.db_path()).c_str());
      if (s.interrupted) throw CLI::RuntimeError(130);
    };
    run(resolve_study(*args));
    if (!args->then_study_file.empty()) {
      StudyArgs next = *args;  // same store (--db), options and preset underneath; the file's own out_dir
      next.study_file = args->then_study_file;
      next.out_dir.clear();
      run(resolve_study(next));
    }
  });
});

}  // namespace
}  // namespace nfscale::cli
