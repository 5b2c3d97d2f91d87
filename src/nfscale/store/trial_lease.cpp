// trial_lease.cpp - background heartbeat thread of a claimed trial.
#include "nfscale/store/trial_lease.h"

#include <chrono>
#include <exception>
#include <memory>

#include "nfscale/store/results_store.h"
#include "nfscale/util/error.h"

namespace nfscale::store {

TrialLease::TrialLease(const std::string& db_location, int64_t trial_id, std::string worker, double interval_s)
    : db_location_(db_location), trial_id_(trial_id), worker_(std::move(worker)), interval_s_(interval_s) {
  require(interval_s > 0.0, "trial lease: heartbeat interval must be > 0 seconds");
  thread_ = std::thread([this] { run(); });
}

TrialLease::~TrialLease() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string TrialLease::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

void TrialLease::run() {
  std::unique_ptr<ResultsStore> db;
  const auto interval = std::chrono::duration<double>(interval_s_);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_ && !lost_.load()) {
    lock.unlock();
    std::string error;
    try {
      if (!db) {
        db = open_results_store(db_location_);
        db->set_reconnect_window(interval_s_);  // this loop retries by itself; never block the owner for long
      }
      if (db->heartbeat(trial_id_, worker_)) {
        beats_.fetch_add(1);
      } else {
        lost_.store(true);
      }
    } catch (const std::exception& e) {
      error = e.what();
      db.reset();  // reconnect next time
    }
    lock.lock();
    if (!error.empty()) last_error_ = error;
    cv_.wait_for(lock, interval, [this] { return stop_; });
  }
}

}  // namespace nfscale::store
