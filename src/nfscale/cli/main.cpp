// main.cpp - the nfscale command-line entry point: runtime set-up, subcommand dispatch, error reporting.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <utility>

#include "nfscale/cli/command_registry.h"
#include "nfscale/util/error.h"
#include "nfscale/util/runtime.h"

namespace nfscale::cli {
namespace {
std::vector<std::pair<int, CommandSetup>>& registry() {
  static std::vector<std::pair<int, CommandSetup>> r;
  return r;
}
}  // namespace

RegisterCommand::RegisterCommand(int order, CommandSetup setup) { registry().emplace_back(order, std::move(setup)); }

std::vector<CommandSetup> registered_commands() {
  auto r = registry();
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<CommandSetup> out;
  for (auto& [order, setup] : r) out.push_back(setup);
  return out;
}

}  // namespace nfscale::cli

int main(int argc, char** argv) {
  CLI::App app{
      "nfscale: the NFNet scaling study of 'ConvNets Match Vision Transformers at Scale' (Smith et al. 2023),\n"
      "end to end on LibTorch: models, pre-training, sweeps, scaling-law fits, planning, fine-tuning, reports."};
  app.require_subcommand(1);
  nfscale::RuntimeOptions runtime;
  app.add_option("--threads", runtime.threads,
                 "Intra-op threads (0 = all online cores; env NFSCALE_THREADS overrides)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--blas-threads", runtime.blas_threads,
                 "OpenBLAS threads for linear layers (default 1: its own thread pool fights the intra-op threads and "
                 "made small GEMMs ~15x slower; 0 = OpenBLAS's default; env NFSCALE_BLAS_THREADS overrides)")
      ->check(CLI::NonNegativeNumber);
  bool no_malloc_tune = false;
  app.add_flag("--no-malloc-tune", no_malloc_tune,
               "Keep glibc's default malloc thresholds (by default mmap/trim thresholds are raised: 10-15% faster steps)");
  app.parse_complete_callback([&] {
    runtime.tune_malloc = !no_malloc_tune;
    nfscale::configure_runtime(runtime);
  });
  for (auto& setup : nfscale::cli::registered_commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const nfscale::UserError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
