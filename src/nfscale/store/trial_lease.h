// trial_lease.h - RAII heartbeat for a claimed trial: a background thread keeps the claim alive while training.
// The lease uses its own connection to the results store, so the training thread can use its ResultsStore freely.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace nfscale::store {

class TrialLease {
 public:
  // Starts heartbeating trial `trial_id` as `worker` every `interval_s` seconds (the first beat is immediate).
  // Choose interval_s well below the stale_after_s that claimers use (e.g. a quarter of it).
  TrialLease(const std::string& db_location, int64_t trial_id, std::string worker, double interval_s);
  // Stops the thread (promptly, it does not wait out the interval).
  ~TrialLease();
  TrialLease(const TrialLease&) = delete;
  TrialLease& operator=(const TrialLease&) = delete;

  // True once a heartbeat found the trial no longer owned by this worker (taken over, or finished elsewhere):
  // the trainer should stop and must not call finish().
  bool lost() const { return lost_.load(); }
  int64_t beats() const { return beats_.load(); }
  // Text of the last heartbeat error (e.g. database busy, server unreachable); empty if none. Errors are retried
  // next interval (reconnecting).
  std::string last_error() const;

 private:
  void run();

  std::string db_location_;  // SQLite path or postgresql:// URI (may hold a password: never shown)
  int64_t trial_id_;
  std::string worker_;
  double interval_s_;
  std::atomic<bool> lost_{false};
  std::atomic<int64_t> beats_{0};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace nfscale::store
