// study_progress.h - the whole study's progress on one updating line (trials done/expected, running, ETA, the
// current compute frontier), with one log line per finished trial, printed by the study's main process for every
// worker (it reads the results database; the workers print nothing themselves).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "nfscale/study/study_spec.h"

namespace nfscale::store {
struct Trial;
}

namespace nfscale::study {

// Expected number of trials of the study once every (model, budget, seed) cell has been searched: registered
// trials plus, for each cell not opened yet, the mean number of trials of the cells finished so far (3 when none
// has: start, one step up, one step down). Grid studies register everything at once.
double expected_trials(const StudySpec& spec, const std::vector<store::Trial>& trials);

// Remaining wall seconds: each unfinished (or still expected) trial costs its epoch budget times the seconds per
// epoch measured on finished trials of the same model (all models' mean when none has finished), over `workers`.
// NaN until some trial has finished.
double eta_seconds(const StudySpec& spec, const std::vector<store::Trial>& trials, int workers);

// One-line summary of the compute frontier of the finished trials (best loss per model and budget):
// "frontier 5 pts, 2 models, 12x C: mini-F0@0.25 0.712 .. mini-F1@2 0.381". Empty when nothing has finished.
std::string frontier_summary(const std::vector<store::Trial>& trials);

// The progress line: "[study] sweep 12/~40 trials (2 running, 1 failed)  ETA 14m 20s  | frontier ...".
std::string progress_line(const StudySpec& spec, const std::string& phase, const std::vector<store::Trial>& trials,
                          int workers);

// Background printer: polls the database every `period_s`; prints each newly finished or failed trial as a log
// line and keeps the progress line updated in place on a terminal (on a pipe or file: a new line whenever a trial
// finishes). Stops (and ends the line) on destruction.
class StudyProgress {
 public:
  StudyProgress(const StudySpec& spec, std::string phase, int workers, double period_s = 2.0);
  ~StudyProgress();
  StudyProgress(const StudyProgress&) = delete;
  StudyProgress& operator=(const StudyProgress&) = delete;

 private:
  void loop();
  void poll(bool final);

  StudySpec spec_;
  std::string phase_;
  int workers_;
  double period_s_;
  bool tty_;
  std::map<int64_t, int> reported_;  // trial id -> status already printed
  bool line_open_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace nfscale::study
