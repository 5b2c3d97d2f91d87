// progress.cpp - moving-average rates and ETA for Progress.
#include "nfscale/util/progress.h"

#include <cmath>
#include <cstdio>

namespace nfscale {

Progress::Progress(int64_t total_units, int64_t start_unit)
    : total_(total_units), start_(start_unit), done_(start_unit), t0_(Clock::now()), last_(t0_) {}

void Progress::update(int64_t done, int64_t items_since_last) {
  auto now = Clock::now();
  double dt = std::chrono::duration<double>(now - last_).count();
  if (dt > 0) {
    double r = items_since_last / dt;
    double u = (done - done_) / dt;
    const double a = 0.3;
    rate_ = rate_ == 0.0 ? r : (1 - a) * rate_ + a * r;
    unit_rate_ = unit_rate_ == 0.0 ? u : (1 - a) * unit_rate_ + a * u;
  }
  done_ = done;
  last_ = now;
}

double Progress::elapsed_seconds() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

double Progress::eta_seconds() const {
  if (unit_rate_ <= 0) return NAN;
  return (total_ - done_) / unit_rate_;
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s)) return "?";
  char buf[32];
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

}  // namespace nfscale
