// sweep.cpp - trial registration, the worker loop, adaptive LR expansion and multi-process workers.
#include "nfscale/study/sweep.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include <ATen/Parallel.h>
#include <thread>

#include "nfscale/models/registry.h"
#include "nfscale/store/results_store.h"
#include "nfscale/store/trial_lease.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/util/process.h"
#include "nfscale/util/progress.h"
#include "nfscale/study/study_progress.h"
#include "nfscale/study/trial_ranks.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {

std::string default_worker_id() { return host_name() + ":" + std::to_string(::getpid()); }

// Forward MACs per image of a model at the study's resolution (cached; 0 if it cannot be counted).
double model_macs(const StudySpec& spec, const std::string& model) {
  static std::mutex mu;
  static std::map<std::pair<std::string, int64_t>, double> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(model, spec.base.resolution);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  double macs = 0;
  try {
    const int64_t channels = spec.base.channels > 0 ? spec.base.channels : 3;
    macs = double(models::count_cost(model, spec.base.resolution, channels, 10).macs_per_image);
  } catch (const std::exception&) {
    // An unknown model fails later with a proper error; here it only loses its place in the queue.
  }
  return cache[key] = macs;
}

}  // namespace

// Claim order: most work ahead first. An adaptive search opens a model's budgets one after the other, so the work
// still ahead of a (model, budget) cell is the model's MACs per image x the sum of its budgets from this one on.
// Claiming the cell with the most work ahead first (list scheduling by critical path) keeps the largest member's
// chain of long budgets from running alone at the end while the other workers idle; the cheap cells fill the
// gaps. Ties: model order. Session 6 measured the old order (cheap budgets first) leaving one of two workers idle
// for ~4 of the sweep's 24 minutes.
int64_t order_of(const StudySpec& spec, const std::string& model, double epochs) {
  double ahead = 0;
  for (double e : spec.epochs_for(model))
    if (e >= epochs * (1 - 1e-9)) ahead += e;
  const double work = model_macs(spec, model) * ahead;  // MACs per image x epochs: ~1e3 .. 1e12
  const int64_t mi = std::find(spec.models.begin(), spec.models.end(), model) - spec.models.begin();
  return -std::llround(work / 1e3) * 1000 + mi;
}

namespace {

bool same(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }

// (lr, loss) pairs of one (model, epochs, seed) group: loss NaN while unfinished, +inf if failed (diverged).
std::vector<std::pair<double, double>> group_results(const std::vector<store::Trial>& trials,
                                                     const std::string& model, double epochs, int64_t seed) {
  std::vector<std::pair<double, double>> out;
  for (auto& t : trials) {
    if (t.spec.model != model || !same(t.spec.epochs, epochs) || t.spec.seed != seed) continue;
    double loss = std::nan("");
    if (t.status == store::TrialStatus::Done && t.result) loss = t.result->holdout_loss;
    if (t.status == store::TrialStatus::Failed) loss = INFINITY;
    out.emplace_back(t.spec.lr, loss);
  }
  return out;
}

// After a trial of an adaptive study ends: extend its group's search, or (once bracketed) open the next budget of
// the same model starting at this budget's optimum (the optimal LR falls slowly with the budget).
void expand_adaptive(store::ResultsStore& db, const StudySpec& spec, const store::Trial& finished) {
  auto trials = db.trials(spec.name);
  const auto& s = finished.spec;
  auto group = group_results(trials, s.model, s.epochs, s.seed);
  double next = next_adaptive_lr(group, spec.max_lr_trials);
  if (next > 0) {
    db.add_trial(make_trial(spec, s.model, s.epochs, next, s.seed, order_of(spec, s.model, s.epochs)));
    return;
  }
  for (auto& [lr, loss] : group)
    if (std::isnan(loss)) return;  // still outstanding
  const std::vector<double>& budgets = spec.epochs_for(s.model);
  auto it = std::find_if(budgets.begin(), budgets.end(), [&](double e) { return same(e, s.epochs); });
  if (it == budgets.end() || it + 1 == budgets.end()) return;
  auto best = std::min_element(group.begin(), group.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  if (best == group.end() || !std::isfinite(best->second)) return;
  const double e_next = *(it + 1);
  for (double lr : adaptive_start_lrs({best->first}))
    db.add_trial(make_trial(spec, s.model, e_next, lr, s.seed, order_of(spec, s.model, e_next)));
}

// Releases running trials claimed by workers of this host whose process no longer exists (killed with -9):
// they resume at once instead of waiting for their heartbeat to go stale.
void release_dead_local_claims(store::ResultsStore& db, const std::string& study) {
  const std::string prefix = host_name() + ":";
  for (auto& t : db.trials(study)) {
    if (t.status != store::TrialStatus::Running || t.worker_id.rfind(prefix, 0) != 0) continue;
    const pid_t pid = static_cast<pid_t>(std::atoll(t.worker_id.c_str() + prefix.size()));
    if (pid <= 0 || pid == ::getpid() || process_exists(pid)) continue;
    try {
      db.release(t.id, t.worker_id);
    } catch (const UserError&) {
      // Someone else changed it meanwhile; nothing to do.
    }
  }
}

// Trains a claimed trial in this process; evaluations are recorded as they happen.
TrialAttempt train_in_process(const train::TrainConfig& cfg, store::ResultsStore& db, int64_t id,
                              const store::TrialLease& lease) {
  train::TrainHooks hooks;
  hooks.on_eval = [&](const train::EvalPoint& p) { db.add_eval_point(id, to_store_point(p)); };
  hooks.should_stop = [&] { return lease.lost(); };
  TrialAttempt a;
  try {
    const train::TrainResult r = train::run_training(cfg, /*resume=*/true, hooks);
    a.status = r.interrupted ? TrialAttempt::Status::Interrupted : TrialAttempt::Status::Completed;
    if (!r.interrupted) a.result = to_trial_result(r, cfg.run_dir);
  } catch (const train::DivergedError& e) {
    a.status = TrialAttempt::Status::Diverged;
    a.error = e.what();
  }
  return a;
}

// Trains a claimed trial as options.trial_nproc ranks; their evaluations are recorded when they have exited.
TrialAttempt train_as_ranks(const train::TrainConfig& cfg, const SweepOptions& options, store::ResultsStore& db,
                            int64_t id, const store::TrialLease& lease) {
  TrialRanksOptions ro;
  ro.nproc = options.trial_nproc;
  ro.threads_per_rank = std::max(1, at::get_num_threads() / options.trial_nproc);
  ro.should_stop = [&] { return lease.lost(); };
  TrialAttempt a = run_trial_as_ranks(cfg, ro);
  for (const auto& e : a.evals) db.add_eval_point(id, e);
  return a;
}

}  // namespace

store::TrialSpec make_trial(const StudySpec& spec, const std::string& model, double epochs, double lr,
                              uint64_t seed, int64_t order) {
  train::TrainConfig c = spec.base;
  c.model = model;
  c.epochs = epochs;
  c.lr = lr;
  c.seed = seed;
  c.run_dir = spec.trial_dir(model, epochs, lr, seed);
  c.quiet = true;
  store::TrialSpec t;
  t.study = spec.name;
  t.model = model;
  t.epochs = epochs;
  t.lr = lr;
  t.seed = static_cast<int64_t>(seed);
  t.config_json = train::to_json(c).dump();
  t.claim_order = order;
  return t;
}

double next_adaptive_lr(const std::vector<std::pair<double, double>>& lr_loss, int max_trials) {
  if (lr_loss.empty()) return 0.0;
  for (auto& [lr, loss] : lr_loss)
    if (std::isnan(loss)) return 0.0;  // wait for outstanding results
  if (static_cast<int>(lr_loss.size()) >= max_trials) return 0.0;
  auto sorted = lr_loss;
  std::sort(sorted.begin(), sorted.end());
  size_t best = 0;
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].second < sorted[best].second) best = i;
  if (!std::isfinite(sorted[best].second)) return sorted.front().first / 2;  // everything diverged: go lower
  if (best == 0) return sorted[0].first / 2;                                // loss may still fall below
  if (best + 1 == sorted.size()) return sorted[best].first * 2;             // loss may still fall above
  return 0.0;                                                               // bracketed
}

std::vector<double> adaptive_start_lrs(const std::vector<double>& lrs) {
  if (lrs.size() != 1) return lrs;
  return {lrs[0] / 2, lrs[0], lrs[0] * 2};
}

void register_study(store::ResultsStore& db, const StudySpec& spec) {
  spec.validate();
  make_dirs(spec.out_dir);
  write_file_atomic((fs::path(spec.out_dir) / "study.json").string(), to_json(spec).dump(2) + "\n");
  for (uint64_t seed : spec.seeds)
    for (const auto& model : spec.models) {
      if (spec.adaptive_lr) {
        // The first budget starts from the given LR(s); later budgets are opened by expand_adaptive.
        const double e0 = spec.epochs_for(model).front();
        for (double lr : adaptive_start_lrs(spec.lrs_for(model)))
          db.add_trial(make_trial(spec, model, e0, lr, seed, order_of(spec, model, e0)));
        continue;
      }
      for (double e : spec.epochs_for(model))
        for (double lr : spec.lrs_for(model)) db.add_trial(make_trial(spec, model, e, lr, seed, order_of(spec, model, e)));
    }
}

SweepSummary run_worker(const StudySpec& spec, const SweepOptions& options) {
  const std::string worker = options.worker_id.empty() ? default_worker_id() : options.worker_id;
  auto opened = store::open_results_store(spec.db_path());
  store::ResultsStore& db = *opened;
  SweepSummary summary;
  auto t0 = std::chrono::steady_clock::now();
  std::map<int64_t, int> rank_failures;  // trial id -> attempts whose ranks failed on this worker
  if (options.trial_nproc > 1) check_trial_split(spec.base, options.trial_nproc);  // before claiming anything
  release_dead_local_claims(db, spec.name);
  while (true) {
    std::optional<store::Trial> claimed = db.claim_next(spec.name, worker, options.stale_after_s);
    if (!claimed) {
      auto c = db.counts(spec.name);
      if (c.running == 0 && c.pending == 0) break;
      // Others are still training (or died: their claims are released, or go stale and come back).
      std::this_thread::sleep_for(std::chrono::seconds(2));
      release_dead_local_claims(db, spec.name);
      continue;
    }
    const store::Trial& t = *claimed;
    train::TrainConfig cfg = train::config_from_json(nlohmann::json::parse(t.spec.config_json),
                                                     db.location() + " trial " + std::to_string(t.id));
    db.set_run_dir(t.id, worker, cfg.run_dir);
    // The claim is kept alive by a background heartbeat (its own connection), so long set-up or evaluation
    // phases cannot make it look stale.
    store::TrialLease lease(spec.db_path(), t.id, worker, std::max(1.0, options.stale_after_s / 6));
    const TrialAttempt a = options.trial_nproc > 1 ? train_as_ranks(cfg, options, db, t.id, lease)
                                                   : train_in_process(cfg, db, t.id, lease);
    if (a.status == TrialAttempt::Status::Interrupted) {
      const bool lost_claim = lease.lost();
      if (!lost_claim) db.release(t.id, worker);  // resumes from its checkpoint on the next claim
      summary.interrupted = !lost_claim;
      std::fprintf(stderr, "[sweep] %s: trial %lld interrupted%s; re-run the same command to resume it\n",
                   worker.c_str(), (long long)t.id, lost_claim ? " (claim lost to another worker)" : "");
      break;
    }
    if (a.status == TrialAttempt::Status::RanksFailed) {
      // Nothing is recorded: the trial goes back to pending and the next claim (this worker's or another's)
      // resumes it from its last checkpoint. A cause that repeats (the same trial twice here) ends this worker.
      std::fprintf(stderr, "[sweep] %s: trial %lld: %s; given back for a retry from its last checkpoint\n",
                   worker.c_str(), (long long)t.id, a.error.c_str());
      try {
        db.release(t.id, worker);
      } catch (const UserError&) {
        // The claim was taken over meanwhile: its new owner trains it.
      }
      if (++rank_failures[t.id] >= 2)
        throw UserError("--trial-nproc " + std::to_string(options.trial_nproc) + ": the ranks of trial " +
                        std::to_string(t.id) + " (" + cfg.run_dir + ") failed twice on worker " + worker +
                        " (last: " + a.error + "); the trial is pending again for another worker or a re-run. "
                        "Fix the cause the ranks printed above, or sweep with --trial-nproc 1");
      continue;
    }
    if (a.status == TrialAttempt::Status::Completed) {
      try {
        db.finish(t.id, worker, a.result);
      } catch (const UserError& e) {  // the claim was taken over meanwhile: the new owner records the result
        std::fprintf(stderr, "[sweep] %s: %s\n", worker.c_str(), e.what());
        continue;
      }
      summary.trials_run++;
    } else {  // diverged
      db.fail(t.id, worker, a.error);
      summary.trials_failed++;
    }
    // Only the searched seeds expand; repeats of frontier trials under further seeds keep their LR.
    if (spec.adaptive_lr && std::find(spec.seeds.begin(), spec.seeds.end(), uint64_t(t.spec.seed)) != spec.seeds.end()) {
      auto latest = db.trial(t.id);
      if (latest) expand_adaptive(db, spec, *latest);
    }
  }
  auto c = db.counts(spec.name);
  summary.done = c.done;
  summary.failed = c.failed;
  summary.pending = c.pending;
  summary.running = c.running;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

SweepSummary run_sweep(const StudySpec& spec, const SweepOptions& options) {
  if (options.trial_nproc > 1) check_trial_split(spec.base, options.trial_nproc);
  {
    make_dirs(spec.out_dir);
    auto db = store::open_results_store(spec.db_path());
    if (options.retry_failed) db->reset_failed(spec.name);
    register_study(*db, spec);
  }
  std::vector<pid_t> children;
  const std::string study_file = (fs::path(spec.out_dir) / "study.json").string();
  // The process's intra-op threads (--threads, default all cores) are split between the workers, at least one each
  // (and a worker's between its trial's ranks, see train_as_ranks).
  const int threads_each = std::max(1, at::get_num_threads() / std::max(1, options.workers));
  SpawnOptions child;
  if (!spec.db.empty()) child.env.push_back({"NFSCALE_DB", spec.db});  // not argv: it may hold a password
  for (int w = 1; w < options.workers; ++w) {
    children.push_back(spawn_process({"/proc/self/exe", "--threads", std::to_string(threads_each), "sweep",
                                      "--study-file", study_file, "--worker-only", "--stale-after",
                                      std::to_string(options.stale_after_s), "--trial-nproc",
                                      std::to_string(options.trial_nproc)},
                                     child));
  }
  SweepSummary summary;
  {
    // This process is one of the workers: it gets the same share of the cores as the others (two OpenMP pools
    // spin-waiting on the same cores made steps up to 20x slower), and prints the study's progress for all.
    const int own_threads = at::get_num_threads();
    at::set_num_threads(threads_each);
    std::optional<StudyProgress> progress;
    if (options.verbose) progress.emplace(spec, options.phase, options.workers);
    SweepOptions quiet = options;
    quiet.verbose = false;
    summary = run_worker(spec, quiet);
    progress.reset();
    at::set_num_threads(own_threads);
  }
  for (pid_t pid : children) {
    if (summary.interrupted) signal_process(pid, SIGTERM);  // the workers checkpoint and release their trials too
    wait_process(pid);
  }
  auto c = store::open_results_store(spec.db_path())->counts(spec.name);
  summary.done = c.done;
  summary.failed = c.failed;
  summary.pending = c.pending;
  summary.running = c.running;
  return summary;
}

}  // namespace nfscale::study
