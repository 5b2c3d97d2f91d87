// study_run.cpp - the phases of `nfscale study` in order.
#include "nfscale/study/study_run.h"

#include <cstdio>

#include "nfscale/store/results_store.h"
#include "nfscale/study/frontier_repeats.h"
#include "nfscale/study/plan_check.h"

namespace nfscale::study {

StudyRun run_study(const StudySpec& spec, const StudyRunOptions& options) {
  StudyRun run;
  std::optional<PlanCheck> check;
  if (!options.report_only) {
    // 1. The sweep: every (model, budget) cell, its LR searched.
    if (run_sweep(spec, options.sweep).interrupted) {
      run.interrupted = true;
      return run;
    }
    // 2. Noise: the frontier trials again under further seeds.
    if (spec.frontier_repeats > 0) {
      {
        auto db = store::open_results_store(spec.db_path());
        run.repeats = register_frontier_repeats(*db, spec, study_points(spec.db_path(), spec.name));
      }
      SweepOptions o = options.sweep;
      o.phase = "seed repeats";
      if (run_sweep(spec, o).interrupted) {
        run.interrupted = true;
        return run;
      }
    }
    // 3. The planner checked by a real run above the swept range.
    if (spec.plan_check > 0) {
      check = run_plan_check(spec, options.fit, options.sweep);
      if (!check->done && check->error.rfind("interrupted", 0) == 0) {
        run.interrupted = true;
        return run;
      }
      if (!check->done) std::fprintf(stderr, "[study] %s\n", check->verdict().c_str());
    }
  } else if (spec.plan_check > 0) {
    check = read_plan_check(spec);
  }
  run.report = write_study_report(spec, options.fit, options.finetune, check ? &*check : nullptr);
  return run;
}

}  // namespace nfscale::study
