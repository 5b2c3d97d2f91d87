// progress.h - one-line progress reporting for long work: step, rate (images/s) and ETA.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace nfscale {

class Progress {
 public:
  // total_units: e.g. steps; unit_items: e.g. images per step (for images/s).
  Progress(int64_t total_units, int64_t start_unit = 0);
  // Records that `done` units are complete; returns items/s over the recent window.
  void update(int64_t done, int64_t items_since_last);
  double items_per_second() const { return rate_; }
  double eta_seconds() const;
  double elapsed_seconds() const;
  static std::string format_duration(double seconds);

 private:
  using Clock = std::chrono::steady_clock;
  int64_t total_, start_, done_;
  Clock::time_point t0_, last_;
  double rate_ = 0.0;       // items/s, exponential moving average
  double unit_rate_ = 0.0;  // units/s, exponential moving average
};

}  // namespace nfscale
