// study_flags.h - flags shared by `nfscale sweep` and `nfscale study`: which study (preset or file), where, workers.
#pragma once
#include <string>

#include "nfscale/study/study_spec.h"
#include "nfscale/study/sweep.h"

namespace CLI {
class App;
}

namespace nfscale::cli {

struct StudyArgs {
  std::string preset = "default";
  std::string study_file;  // TOML/JSON study file (on top of the preset)
  std::string out_dir;     // overrides the study's out_dir
  std::string db;          // results store (--db or NFSCALE_DB); "" = <out>/results.sqlite
  study::SweepOptions sweep;
  bool worker_only = false;  // internal: run one worker of an already registered study
  std::string then_study_file;  // internal, with worker_only: a second registered study to work on after the first
};

void add_study_flags(CLI::App& app, StudyArgs& args);

// The resolved study: preset, then the study file, then --out.
study::StudySpec resolve_study(const StudyArgs& args);

}  // namespace nfscale::cli
