// main.cpp - the nfscale command-line entry point: runtime set-up, subcommand dispatch, error reporting.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
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

namespace {
// Edit distance (insert, delete, substitute, and swap of neighbours: "trian" -> "train" is 1).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}
}  // namespace

std::string unknown_subcommand_error(CLI::App& app, int argc, const char* const* argv) {
  // The first word that is neither a global option nor its value is the subcommand.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") return "";
    if (!arg.empty() && arg[0] == '-') {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* opt = app.get_option_no_throw(name);
      if (opt && arg.find('=') == std::string::npos && opt->get_items_expected_min() > 0) ++i;  // skip its value
      continue;
    }
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), arg) != names.end()) return "";
    std::string nearest, all;
    size_t best = SIZE_MAX;
    for (const auto& n : names) {
      const size_t d = edit_distance(arg, n);
      if (d < best) best = d, nearest = n;
      all += (all.empty() ? "" : ", ") + n;
    }
    return "unknown subcommand '" + arg + "'" + (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") +
           " (subcommands: " + all + "; `nfscale --help` describes them)";
  }
  return "";
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
  // CLI11 would answer a misspelt subcommand with "A subcommand is required" (or print the general help for
  // `typo --help` and exit 0): name it, suggest the nearest one, exit non-zero.
  const std::string unknown = nfscale::cli::unknown_subcommand_error(app, argc, argv);
  if (!unknown.empty()) {
    std::fprintf(stderr, "error: %s\n", unknown.c_str());
    return 2;
  }
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
