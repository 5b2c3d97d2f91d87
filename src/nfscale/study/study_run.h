// study_run.h - `nfscale study` as one library call: the sweep, the seed repeats of the frontier, the planner
// check, then fits, findings and the report. Every phase resumes: re-running after a kill continues where it was.
#pragma once
#include "nfscale/study/finetune_study.h"
#include "nfscale/study/pipeline.h"
#include "nfscale/study/study_spec.h"
#include "nfscale/study/sweep.h"

namespace nfscale::study {

struct StudyRunOptions {
  SweepOptions sweep;
  scaling::FitOptions fit;
  bool report_only = false;                  // skip every training phase; report what the database holds
  const FinetuneStudyOptions* finetune = nullptr;  // also fine-tune (paper Fig. 1)
};

struct StudyRun {
  bool interrupted = false;                  // a signal stopped a phase; re-run the same command to resume
  int64_t repeats = 0;                       // seed-repeat trials the frontier asked for
  std::optional<StudyReport> report;         // absent when interrupted
};

StudyRun run_study(const StudySpec& spec, const StudyRunOptions& options);

}  // namespace nfscale::study
