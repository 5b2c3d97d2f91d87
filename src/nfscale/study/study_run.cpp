// study_run.cpp - the phases of `nfscale study` in order.
#include "nfscale/study/study_run.h"

#include <algorithm>
#include <cstdio>

#include <ATen/Parallel.h>

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
    // 2. Noise: the frontier trials again under further seeds; 3. the planner checked by a real run above the
    // swept range, planned from the sweep and trained beside the repeats (each run uses one core: these models
    // gain nothing from a second thread; once the check's run is trained, its worker claims repeats too), then
    // judged by the prediction of the fit that includes the repeats.
    if (spec.frontier_repeats > 0) {
      {
        auto db = store::open_results_store(spec.db_path());
        run.repeats = register_frontier_repeats(*db, spec, study_points(spec.db_path(), spec.name));
      }
      std::optional<PlanCheck> pc;
      pid_t pc_worker = -1;
      if (spec.plan_check > 0) {
        pc.emplace();
        pc_worker = start_plan_check(*pc, spec, options.fit, options.sweep);
      }
      SweepOptions o = options.sweep;
      o.phase = "seed repeats";
      const int threads = at::get_num_threads();
      if (pc_worker > 0) {
        // The check's worker has one thread: the repeats get the rest (never more threads than cores in all).
        o.workers = std::max(1, o.workers - 1);
        at::set_num_threads(std::max(1, threads - 1));
      }
      const bool interrupted = run_sweep(spec, o).interrupted;
      at::set_num_threads(threads);
      if (pc) {
        if (pc_worker > 0 && !interrupted)
          std::fprintf(stderr, "[study] seed repeats done; waiting for the planner check's run\n");
        finish_plan_check(*pc, pc_worker, spec, options.fit, interrupted);
        check = pc;
      }
      if (interrupted) {
        run.interrupted = true;
        return run;
      }
      if (check && !check->done) std::fprintf(stderr, "[study] %s\n", check->verdict().c_str());
    } else if (spec.plan_check > 0) {
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
