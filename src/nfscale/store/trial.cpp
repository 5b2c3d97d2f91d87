// trial.cpp - text forms of trial states.
#include "nfscale/store/trial.h"

#include "nfscale/util/error.h"

namespace nfscale::store {

std::string to_string(TrialStatus status) {
  switch (status) {
    case TrialStatus::Pending: return "pending";
    case TrialStatus::Running: return "running";
    case TrialStatus::Done: return "done";
    case TrialStatus::Failed: return "failed";
  }
  return "unknown";
}

TrialStatus parse_trial_status(const std::string& text, const std::string& what) {
  if (text == "pending") return TrialStatus::Pending;
  if (text == "running") return TrialStatus::Running;
  if (text == "done") return TrialStatus::Done;
  if (text == "failed") return TrialStatus::Failed;
  throw UserError(what + ": unknown trial status '" + text +
                  "' (expected pending, running, done or failed; the database may be from another program)");
}

}  // namespace nfscale::store
