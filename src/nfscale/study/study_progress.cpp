// study_progress.cpp - the study's one-line progress (counts, expected total, ETA, frontier) and its printer thread.
#include "nfscale/study/study_progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <tuple>

#include "nfscale/scaling/text_format.h"
#include "nfscale/scaling/fits.h"
#include "nfscale/store/results_store.h"
#include "nfscale/util/progress.h"

namespace nfscale::study {

namespace {
using store::TrialStatus;

bool finished(const store::Trial& t) { return t.status == TrialStatus::Done || t.status == TrialStatus::Failed; }

using scaling::fmt;
}  // namespace

double expected_trials(const StudySpec& spec, const std::vector<store::Trial>& trials) {
  if (!spec.adaptive_lr) return double(trials.size());
  using Cell = std::tuple<std::string, double, int64_t>;
  std::map<Cell, std::pair<int, bool>> cells;  // cell -> (trials, all finished)
  for (auto& t : trials) {
    if (std::find(spec.seeds.begin(), spec.seeds.end(), uint64_t(t.spec.seed)) == spec.seeds.end()) continue;
    auto& c = cells[{t.spec.model, t.spec.epochs, t.spec.seed}];
    if (c.first == 0) c.second = true;
    c.first++;
    c.second = c.second && finished(t);
  }
  double done_cells = 0, done_trials = 0;
  for (auto& [k, v] : cells)
    if (v.second) {
      done_cells++;
      done_trials += v.first;
    }
  const double per_cell = done_cells > 0 ? done_trials / done_cells : 3.0;
  const double all_cells = double(spec.cell_count());
  const double unopened = std::max(0.0, all_cells - double(cells.size()));
  return double(trials.size()) + unopened * per_cell;
}

double eta_seconds(const StudySpec& spec, const std::vector<store::Trial>& trials, int workers) {
  std::map<std::string, std::pair<double, double>> per_model;  // model -> (seconds, epochs) of finished trials
  double all_s = 0, all_e = 0;
  for (auto& t : trials)
    if (t.status == TrialStatus::Done && t.result) {
      per_model[t.spec.model].first += t.result->seconds;
      per_model[t.spec.model].second += t.spec.epochs;
      all_s += t.result->seconds;
      all_e += t.spec.epochs;
    }
  if (all_e <= 0) return NAN;
  auto rate = [&](const std::string& model) {
    auto it = per_model.find(model);
    return it != per_model.end() ? it->second.first / it->second.second : all_s / all_e;
  };
  double eta = 0;
  for (auto& t : trials)
    if (!finished(t)) eta += t.spec.epochs * rate(t.spec.model);
  if (spec.adaptive_lr) {
    // Cells not opened yet: the expected trials of each, at its model's rate and budget.
    std::set<std::tuple<std::string, double, int64_t>> opened;
    for (auto& t : trials) opened.insert({t.spec.model, t.spec.epochs, t.spec.seed});
    const double per_cell =
        std::max(1.0, (expected_trials(spec, trials) - double(trials.size())) /
                          std::max(1.0, double(spec.cell_count()) -
                                            double(opened.size())));
    for (auto& m : spec.models)
      for (double e : spec.epochs_for(m))
        for (uint64_t s : spec.seeds)
          if (!opened.count({m, e, int64_t(s)})) eta += per_cell * e * rate(m);
  }
  return eta / std::max(1, workers);
}

std::string frontier_summary(const std::vector<store::Trial>& trials) {
  std::vector<scaling::RunPoint> pts;
  for (auto& t : trials) {
    if (t.status != TrialStatus::Done || !t.result || !std::isfinite(t.result->holdout_loss)) continue;
    scaling::RunPoint p;
    p.model = t.spec.model;
    p.epochs = t.spec.epochs;
    p.flops = t.result->flops;
    p.loss = t.result->holdout_loss;
    pts.push_back(p);
  }
  if (pts.empty()) return "";
  auto f = scaling::extract_frontier(pts);
  std::set<std::string> models;
  for (auto& p : f) models.insert(p.model);
  auto label = [](const scaling::RunPoint& p) { return p.model + "@" + fmt("%g", p.epochs) + " " + fmt("%.3f", p.loss); };
  std::string s = "frontier " + std::to_string(f.size()) + " pts, " + std::to_string(models.size()) + " model" +
                  (models.size() == 1 ? "" : "s") + ", " + fmt("%.3g", f.back().flops / f.front().flops) + "x C: " +
                  label(f.front());
  if (f.size() > 1) s += " .. " + label(f.back());
  return s;
}

std::string progress_line(const StudySpec& spec, const std::string& phase, const std::vector<store::Trial>& trials,
                          int workers) {
  int64_t done = 0, running = 0, failed = 0;
  for (auto& t : trials) {
    done += t.status == TrialStatus::Done;
    failed += t.status == TrialStatus::Failed;
    running += t.status == TrialStatus::Running;
  }
  const double expected = expected_trials(spec, trials);
  std::string s = "[study] " + phase + " " + std::to_string(done + failed) + "/" +
                  (spec.adaptive_lr && expected > double(trials.size()) ? "~" : "") + fmt("%.0f", expected) +
                  " trials (" + std::to_string(running) + " running";
  if (failed) s += ", " + std::to_string(failed) + " diverged";
  s += ")  ETA " + Progress::format_duration(eta_seconds(spec, trials, workers));
  const std::string f = frontier_summary(trials);
  if (!f.empty()) s += "  | " + f;
  return s;
}

StudyProgress::StudyProgress(const StudySpec& spec, std::string phase, int workers, double period_s)
    : spec_(spec), phase_(std::move(phase)), workers_(workers), period_s_(period_s), tty_(::isatty(2) != 0) {
  // Trials finished before this phase started are not re-printed.
  try {
    auto db = store::open_results_store(spec_.db_path());
    for (auto& t : db->trials(spec_.name))
      if (finished(t)) reported_[t.id] = int(t.status);
  } catch (const std::exception&) {
  }
  thread_ = std::thread([this] { loop(); });
}

StudyProgress::~StudyProgress() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void StudyProgress::loop() {
  auto next = std::chrono::steady_clock::now();
  while (!stop_) {
    if (std::chrono::steady_clock::now() >= next) {
      poll(false);
      next = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                    std::chrono::duration<double>(period_s_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  poll(true);
}

void StudyProgress::poll(bool final) {
  std::vector<store::Trial> trials;
  try {
    trials = store::open_results_store(spec_.db_path())->trials(spec_.name);
  } catch (const std::exception&) {
    return;  // the database is busy or being created: try again next period
  }
  bool news = false;
  for (auto& t : trials) {
    if (!finished(t) || reported_.count(t.id)) continue;
    reported_[t.id] = int(t.status);
    news = true;
    if (tty_ && line_open_) std::fprintf(stderr, "\r\033[K");
    line_open_ = false;
    if (t.status == TrialStatus::Failed) {
      std::fprintf(stderr, "[sweep] %-9s e=%-5g lr=%-6g seed %lld diverged\n", t.spec.model.c_str(), t.spec.epochs,
                   t.spec.lr, (long long)t.spec.seed);
      continue;
    }
    const auto& r = *t.result;
    std::fprintf(stderr, "[sweep] %-9s e=%-5g lr=%-6g seed %lld  held-out loss %.4f  top-1 err %5.2f%%  %.3g FLOPs  %6.1f s\n",
                 t.spec.model.c_str(), t.spec.epochs, t.spec.lr, (long long)t.spec.seed, r.holdout_loss,
                 100 * r.holdout_top1_error, r.flops, r.seconds);
  }
  const std::string line = progress_line(spec_, phase_, trials, workers_);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    line_open_ = true;
    if (final) {
      std::fprintf(stderr, "\n");
      line_open_ = false;
    }
  } else if (news || final) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace nfscale::study
