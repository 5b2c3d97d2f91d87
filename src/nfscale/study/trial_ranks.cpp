// trial_ranks.cpp - a sweep trial as N data-parallel ranks (see trial_ranks.h): the worker's launch and the
// ranks' side, which meet in two files of the trial's run dir (the configuration in, rank 0's outcome out).
#include "nfscale/study/trial_ranks.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "nfscale/dist/communicator.h"
#include "nfscale/dist/launcher.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {

// Written by the worker before the launch: the trial's training configuration (TrainConfig JSON).
constexpr const char* kConfigFile = "trial-config.json";
// Written by rank 0 when it is done: {"status": completed|interrupted|diverged, "error", "result"}.
constexpr const char* kOutcomeFile = "trial-outcome.json";

std::string in_dir(const std::string& run_dir, const char* name) { return (fs::path(run_dir) / name).string(); }

// A number of a JSON object; JSON has no NaN or infinity (nlohmann writes them as null): null reads as NaN.
double number(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? std::nan("") : it->get<double>();
}

nlohmann::json to_json(const store::TrialResult& r) {
  return {{"flops", r.flops},
          {"seconds", r.seconds},
          {"params", r.params},
          {"macs_per_image", r.macs_per_image},
          {"holdout_loss", r.holdout_loss},
          {"holdout_top1_error", r.holdout_top1_error},
          {"test_metrics", r.test_metrics_json},
          {"checkpoint_path", r.checkpoint_path},
          {"run_dir", r.run_dir}};
}

store::TrialResult trial_result_from_json(const nlohmann::json& j) {
  store::TrialResult r;
  r.flops = number(j, "flops");
  r.seconds = number(j, "seconds");
  r.params = j.at("params").get<int64_t>();
  r.macs_per_image = number(j, "macs_per_image");
  r.holdout_loss = number(j, "holdout_loss");
  r.holdout_top1_error = number(j, "holdout_top1_error");
  r.test_metrics_json = j.at("test_metrics").get<std::string>();
  r.checkpoint_path = j.at("checkpoint_path").get<std::string>();
  r.run_dir = j.at("run_dir").get<std::string>();
  return r;
}

// The evaluations rank 0 logged in <run_dir>/metrics.jsonl (over all attempts; a step evaluated twice - after a
// kill between an evaluation and the next checkpoint - keeps its last line). A torn last line is skipped.
std::vector<store::EvalPoint> logged_evals(const std::string& run_dir) {
  std::map<int64_t, store::EvalPoint> by_step;
  std::ifstream in(in_dir(run_dir, "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("type", "") != "eval") continue;
    const char* set = j.contains("holdout") ? "holdout" : j.contains("test") ? "test" : nullptr;
    if (!set) continue;
    store::EvalPoint p;
    p.step = j.at("step").get<int64_t>();
    p.epoch = number(j, "epoch");
    p.examples_seen = j.at("examples_seen").get<int64_t>();
    p.flops = number(j, "flops");
    p.holdout_loss = number(j.at(set), "loss");
    p.top1_error = number(j.at(set), "top1_err");
    by_step[p.step] = p;
  }
  std::vector<store::EvalPoint> out;
  for (auto& [step, p] : by_step) out.push_back(p);
  return out;
}

}  // namespace

store::TrialResult to_trial_result(const train::TrainResult& r, const std::string& run_dir) {
  store::TrialResult res;
  res.flops = r.train_flops;
  res.seconds = r.seconds;
  res.params = r.params;
  res.macs_per_image = double(r.macs_per_image);
  const auto& fe = r.final_eval;
  res.holdout_loss = fe.has_holdout ? fe.holdout.loss : fe.test.loss;
  res.holdout_top1_error = fe.has_holdout ? fe.holdout.top1_err : fe.test.top1_err;
  nlohmann::json tm = nlohmann::json::object();
  if (fe.has_test) tm["test"] = train::to_json(fe.test);
  if (fe.has_holdout) tm["holdout"] = train::to_json(fe.holdout);
  tm["train_examples"] = r.train_examples;
  tm["steps"] = r.steps;
  res.test_metrics_json = tm.dump();
  res.checkpoint_path = r.checkpoint_path;
  res.run_dir = run_dir;
  return res;
}

store::EvalPoint to_store_point(const train::EvalPoint& p) {
  store::EvalPoint e;
  e.step = p.step;
  e.epoch = p.epoch;
  e.examples_seen = p.examples_seen;
  e.flops = p.flops;
  e.holdout_loss = p.has_holdout ? p.holdout.loss : p.test.loss;
  e.top1_error = p.has_holdout ? p.holdout.top1_err : p.test.top1_err;
  return e;
}

void check_trial_split(const train::TrainConfig& config, int nproc) {
  const std::string n = std::to_string(nproc);
  require(nproc >= 2 && nproc <= 256, "--trial-nproc " + n + ": need 2..256 ranks per trial (1 = in-process)");
  const int64_t micro = config.micro_batch;
  require(config.batch % nproc == 0 && (micro == 0 || config.batch % (int64_t(nproc) * micro) == 0),
          "--trial-nproc " + n + ": the trials' batch " + std::to_string(config.batch) +
              (micro > 0 ? " with micro_batch " + std::to_string(micro) : std::string()) +
              " does not split over " + n + " ranks (batch = micro-batch per rank x ranks x accumulation steps); "
              "choose a --trial-nproc that divides the batch, or change the study's [train] batch / micro_batch");
}

TrialAttempt run_trial_as_ranks(const train::TrainConfig& config, const TrialRanksOptions& o) {
  check_trial_split(config, o.nproc);
  const std::string n = std::to_string(o.nproc);
  make_dirs(config.run_dir);
  write_file_atomic(in_dir(config.run_dir, kConfigFile), train::to_json(config).dump(2) + "\n");
  const std::string outcome_path = in_dir(config.run_dir, kOutcomeFile);
  std::error_code ec;
  fs::remove(outcome_path, ec);  // an earlier attempt's

  const std::string threads = std::to_string(std::max(1, o.threads_per_rank));
  dist::LocalLaunch launch;
  launch.nproc = o.nproc;
  launch.args = {"/proc/self/exe", "--threads", threads, "trial-rank", "--run-dir", config.run_dir};
  launch.env = {{"NFSCALE_THREADS", threads}};  // it would override --threads if the worker's environment set it
  launch.should_stop = o.should_stop;
  const dist::LaunchResult ran = dist::launch_local(launch);

  TrialAttempt a;
  a.stop_signal = ran.stop_signal;
  a.evals = logged_evals(config.run_dir);
  if (ran.exit_code == 0 && fs::exists(outcome_path)) {
    const auto j = nlohmann::json::parse(read_file(outcome_path));
    const std::string status = j.at("status").get<std::string>();
    if (status == "completed") {
      a.status = TrialAttempt::Status::Completed;
      a.result = trial_result_from_json(j.at("result"));
    } else if (status == "diverged") {
      a.status = TrialAttempt::Status::Diverged;
      a.error = j.at("error").get<std::string>();
    } else {
      a.status = TrialAttempt::Status::Interrupted;
    }
  } else if (ran.stop_signal != 0) {
    // Asked to stop (a signal, or the claim was lost): a rank still starting up may have died of the signal
    // before it could catch it; the last checkpoint stands either way.
    a.status = TrialAttempt::Status::Interrupted;
  } else {
    a.status = TrialAttempt::Status::RanksFailed;
    a.error = ran.exit_code != 0
                  ? "a rank of " + n + " exited with code " + std::to_string(ran.exit_code) +
                        " (128 + N: killed by signal N; its messages are above)"
                  : "the " + n + " ranks exited without rank 0 writing " + outcome_path;
  }
  return a;
}

void train_trial_rank(const std::string& run_dir, const train::TrainHooks& hooks) {
  const std::string config_path = in_dir(run_dir, kConfigFile);
  require(fs::exists(config_path), config_path + ": missing; `trial-rank` is started by `nfscale sweep --trial-nproc N` "
                                                 "(it writes this file), not by hand");
  const train::TrainConfig cfg =
      train::config_from_json(nlohmann::json::parse(read_file(config_path)), config_path);
  nlohmann::json outcome;
  try {
    const train::TrainResult r = train::run_training(cfg, /*resume=*/true, hooks);
    if (r.interrupted)
      outcome = {{"status", "interrupted"}};
    else
      outcome = {{"status", "completed"}, {"result", to_json(to_trial_result(r, cfg.run_dir))}};
  } catch (const train::DivergedError& e) {
    outcome = {{"status", "diverged"}, {"error", e.what()}};
  }
  if (!hooks.comm || hooks.comm->rank() == 0)
    write_file_atomic(in_dir(run_dir, kOutcomeFile), outcome.dump(2) + "\n");
}

}  // namespace nfscale::study
