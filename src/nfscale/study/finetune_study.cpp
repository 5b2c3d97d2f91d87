// finetune_study.cpp - candidate selection and fine-tuning of a study's frontier checkpoints.
#include "nfscale/study/finetune_study.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "nfscale/store/results_store.h"
#include "nfscale/study/finetune.h"
#include "nfscale/util/error.h"

namespace nfscale::study {
namespace fs = std::filesystem;

namespace {
int64_t trial_id(const std::string& origin) {  // "trial 12" -> 12
  auto pos = origin.rfind(' ');
  return pos == std::string::npos ? -1 : std::atoll(origin.c_str() + pos + 1);
}
}  // namespace

FinetuneStudy run_finetune_study(const StudySpec& spec, const scaling::StudyFit& fit,
                                 const FinetuneStudyOptions& opt) {
  require(fit.frontier.has_value(),
          "study --finetune needs a pre-training frontier; the fit has none (" + fit.frontier_error + ")");
  auto db = store::open_results_store(spec.db_path(), store::OpenMode::MustExist);
  std::map<int64_t, store::Trial> trials;
  for (auto& t : db->trials(spec.name))
    if (t.status == store::TrialStatus::Done && t.result) trials[t.id] = t;

  // Frontier checkpoints, most expensive first (those are the ones the paper fine-tunes).
  std::vector<scaling::RunPoint> frontier = fit.frontier->frontier;
  std::sort(frontier.begin(), frontier.end(), [](auto& a, auto& b) { return a.flops > b.flops; });
  if (static_cast<int64_t>(frontier.size()) > opt.max_frontier) frontier.resize(static_cast<size_t>(opt.max_frontier));

  FinetuneStudy out;
  std::vector<std::pair<size_t, size_t>> pairs;  // (frontier candidate, larger alternative)
  auto add = [&](const store::Trial& t, bool on_frontier) {
    for (size_t i = 0; i < out.candidates.size(); ++i)
      if (out.candidates[i].trial == "trial " + std::to_string(t.id)) return i;
    FinetuneCandidate c;
    c.trial = "trial " + std::to_string(t.id);
    c.model = t.spec.model;
    c.epochs = t.spec.epochs;
    c.lr = t.spec.lr;
    c.pretrain_flops = t.result->flops;
    c.pretrain_loss = t.result->holdout_loss;
    c.on_frontier = on_frontier;
    c.run_dir = t.result->run_dir;
    out.candidates.push_back(c);
    return out.candidates.size() - 1;
  };
  for (auto& p : frontier) {
    auto it = trials.find(trial_id(p.origin));
    if (it == trials.end()) continue;
    size_t fi = add(it->second, true);
    if (!opt.larger_alternatives) continue;
    // The next larger model of the study, at the budget whose compute is closest (best LR of that budget).
    auto m = std::find(spec.models.begin(), spec.models.end(), p.model);
    if (m == spec.models.end() || m + 1 == spec.models.end()) continue;
    const std::string larger = *(m + 1);
    const store::Trial* best = nullptr;
    for (auto& [id, t] : trials) {
      if (t.spec.model != larger) continue;
      const double d = std::fabs(std::log(t.result->flops / p.flops));
      if (!best) {
        best = &t;
        continue;
      }
      const double db_ = std::fabs(std::log(best->result->flops / p.flops));
      const bool same_budget = std::fabs(t.spec.epochs - best->spec.epochs) < 1e-12;
      if ((same_budget && t.result->holdout_loss < best->result->holdout_loss) || (!same_budget && d < db_ - 1e-9))
        best = &t;
    }
    if (best && best->spec.epochs < p.epochs) pairs.emplace_back(fi, add(*best, false));
  }

  for (auto& c : out.candidates) {
    FinetuneRequest r;
    r.from = c.run_dir;
    r.config = finetune_defaults();
    r.config.data = opt.data;
    r.config.epochs = opt.epochs;
    r.config.quiet = true;
    r.config.run_dir = (fs::path(spec.out_dir) / "finetune" / fs::path(c.run_dir).filename()).string();
    r.resume = true;
    FinetuneResult res = finetune(r);
    c.finetune_top1_err = res.test_top1_err;
    c.finetune_loss = res.test_loss;
    c.finetune_flops = res.flops;
    std::fprintf(stderr, "[finetune] %-9s e=%-5g (pre-train loss %.4f, %.3g FLOPs%s): fine-tuned test top-1 err %.2f%%\n",
                 c.model.c_str(), c.epochs, c.pretrain_loss, c.pretrain_flops, c.on_frontier ? ", frontier" : "",
                 100 * c.finetune_top1_err);
  }
  for (auto& [fi, ai] : pairs) {
    const auto& f = out.candidates[fi];
    const auto& a = out.candidates[ai];
    const bool f_better_pretrain = f.pretrain_loss <= a.pretrain_loss;
    const bool f_better_finetune = f.finetune_top1_err <= a.finetune_top1_err;
    if (f_better_pretrain != f_better_finetune) {
      char buf[400];
      std::snprintf(buf, sizeof buf,
                    "%s e=%g (pre-train loss %.4f) vs %s e=%g (%.4f) at ~%.3g FLOPs: lower pre-training loss, but "
                    "fine-tuned error %.2f%% vs %.2f%%",
                    (f_better_pretrain ? f : a).model.c_str(), (f_better_pretrain ? f : a).epochs,
                    (f_better_pretrain ? f : a).pretrain_loss, (f_better_pretrain ? a : f).model.c_str(),
                    (f_better_pretrain ? a : f).epochs, (f_better_pretrain ? a : f).pretrain_loss, f.pretrain_flops,
                    100 * (f_better_pretrain ? f : a).finetune_top1_err,
                    100 * (f_better_pretrain ? a : f).finetune_top1_err);
      out.reversals.push_back(buf);
    }
  }
  return out;
}

}  // namespace nfscale::study
