// test_study_run.cpp - the study's phases beyond the sweep: the progress estimate (expected trials, ETA, frontier
// line), the seed repeats of the frontier, and `nfscale study` end to end with the planner checked by a real run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <nlohmann/json.hpp>

#include "nfscale/store/results_store.h"
#include "nfscale/study/frontier_repeats.h"
#include "nfscale/study/study_progress.h"
#include "nfscale/study/sweep.h"

namespace nfscale::study {
namespace {
namespace fs = std::filesystem;

const std::string kBinary = std::string(NFSCALE_BINARY_DIR) + "/bin/nfscale";

// A fresh temporary folder `<tmp>/<prefix><pid>` holding study.toml = `toml_head` + `out_dir` (its "out") + `toml_tail`.
struct StudyDir {
  fs::path dir;
  std::string file, log;
  StudyDir(const std::string& prefix, const std::string& toml_head, const std::string& toml_tail)
      : dir(fs::temp_directory_path() / (prefix + std::to_string(getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    file = (dir / "study.toml").string();
    log = (dir / "log.txt").string();
    std::ofstream(file) << toml_head << "out_dir = \"" << (dir / "out").string() << "\"\n" << toml_tail;
  }
  // `nfscale [--threads 1] study --preset smoke --study-file <file> <extra>`, output to `log`; the exit code.
  int run(const std::string& extra = "", bool one_thread = true) const {
    const std::string cmd = kBinary + (one_thread ? " --threads 1" : "") + " study --preset smoke --study-file " +
                            file + " " + extra + " > " + log + " 2>&1";
    return std::system(cmd.c_str());
  }
  std::string output() const {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
};

store::Trial trial(int64_t id, const std::string& model, double epochs, double lr, int64_t seed,
                     store::TrialStatus status, double loss = NAN, double seconds = 0, double flops = 0) {
  store::Trial t;
  t.id = id;
  t.spec.model = model;
  t.spec.epochs = epochs;
  t.spec.lr = lr;
  t.spec.seed = seed;
  t.status = status;
  if (status == store::TrialStatus::Done) {
    store::TrialResult r;
    r.holdout_loss = loss;
    r.seconds = seconds;
    r.flops = flops;
    t.result = r;
  }
  return t;
}

StudySpec two_by_two(bool adaptive) {
  StudySpec s;
  s.models = {"a", "b"};
  s.epochs = {1, 2};
  s.lrs = {0.4};
  s.adaptive_lr = adaptive;
  return s;
}

TEST(StudyProgress, ExpectedTrialsCountsUnopenedCellsAtTheMeanSearchLength) {
  using S = store::TrialStatus;
  // Cell (a, 1) finished its search in 3 trials; (b, 1) is open; (a, 2) and (b, 2) are not opened yet.
  std::vector<store::Trial> t = {trial(1, "a", 1, 0.4, 0, S::Done, 1.0, 10), trial(2, "a", 1, 0.2, 0, S::Done, 1.2, 10),
                                   trial(3, "a", 1, 0.8, 0, S::Done, 1.1, 10), trial(4, "b", 1, 0.4, 0, S::Running)};
  EXPECT_DOUBLE_EQ(expected_trials(two_by_two(true), t), 4 + 2 * 3.0);
  EXPECT_DOUBLE_EQ(expected_trials(two_by_two(false), t), 4.0);  // a grid registers everything at once
  // Repeat seeds (not searched) do not open cells.
  t.push_back(trial(5, "a", 2, 0.4, 7, S::Pending));
  EXPECT_DOUBLE_EQ(expected_trials(two_by_two(true), t), 5 + 2 * 3.0);
}

TEST(StudyProgress, EtaUsesEachModelsSecondsPerEpoch) {
  using S = store::TrialStatus;
  std::vector<store::Trial> none = {trial(1, "a", 1, 0.4, 0, S::Pending)};
  EXPECT_TRUE(std::isnan(eta_seconds(two_by_two(false), none, 1)));  // nothing measured yet
  // a: 10 s per epoch. Unfinished: a@2 (20 s) and b@1 (b unmeasured: the overall 10 s/epoch).
  std::vector<store::Trial> t = {trial(1, "a", 1, 0.4, 0, S::Done, 1.0, 10), trial(2, "a", 2, 0.4, 0, S::Pending),
                                   trial(3, "b", 1, 0.4, 0, S::Running)};
  EXPECT_NEAR(eta_seconds(two_by_two(false), t, 1), 30.0, 1e-9);
  EXPECT_NEAR(eta_seconds(two_by_two(false), t, 2), 15.0, 1e-9);
  // Adaptive: the unopened cell (b, 2) adds the mean search length of the finished cells (here 1 trial: (a, 1))
  // x 2 epochs x 10 s.
  EXPECT_NEAR(eta_seconds(two_by_two(true), t, 1), 30.0 + 20.0, 1e-9);
}

TEST(StudyProgress, LineShowsCountsEtaAndFrontier) {
  using S = store::TrialStatus;
  std::vector<store::Trial> t = {trial(1, "a", 1, 0.4, 0, S::Done, 1.0, 10, 1e9),
                                   trial(2, "a", 2, 0.4, 0, S::Done, 0.8, 20, 2e9),
                                   trial(3, "b", 2, 0.4, 0, S::Done, 0.5, 40, 8e9),
                                   trial(4, "b", 1, 0.4, 0, S::Failed), trial(5, "b", 1, 0.2, 0, S::Running)};
  const std::string line = progress_line(two_by_two(false), "sweep", t, 1);
  EXPECT_NE(line.find("sweep 4/5 trials (1 running, 1 diverged)"), std::string::npos) << line;
  EXPECT_NE(line.find("frontier 3 pts, 2 models, 8x C: a@1 1.000 .. b@2 0.500"), std::string::npos) << line;
  EXPECT_EQ(frontier_summary({}), "");
}

TEST(FrontierRepeats, RepeatsTheBestLrOfEachFrontierPointUnderNewSeeds) {
  StudySpec spec = two_by_two(true);
  spec.models = {"nano-F0", "micro-F0"};  // real models: repeats are chosen per model family
  spec.name = "r";
  spec.seeds = {0};
  spec.frontier_repeats = 2;
  spec.base.data = "digits";
  spec.out_dir = (fs::temp_directory_path() / ("nfscale_repeats_" + std::to_string(getpid()))).string();
  auto pt = [](const std::string& m, double e, double lr, double flops, double loss, int seed = 0) {
    scaling::RunPoint p;
    p.model = m;
    p.epochs = e;
    p.lr = lr;
    p.flops = flops;
    p.loss = loss;
    p.seed = seed;
    return p;
  };
  // nano@1: best LR 0.4; nano@2: best LR 0.2; micro@2 costs more than a@2 but is worse: off the frontier.
  // A point of an earlier repeat seed (5) must not change the choice.
  std::vector<scaling::RunPoint> pts = {pt("nano-F0", 1, 0.4, 1e9, 1.0),  pt("nano-F0", 1, 0.8, 1e9, 1.3), pt("nano-F0", 2, 0.2, 2e9, 0.7),
                                        pt("nano-F0", 2, 0.4, 2e9, 0.9),  pt("micro-F0", 2, 0.4, 4e9, 0.8), pt("nano-F0", 2, 0.4, 2e9, 0.1, 5)};
  auto f = searched_frontier(spec, pts);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].lr, 0.4);
  EXPECT_EQ(f[1].lr, 0.2);
  EXPECT_EQ(repeat_seeds(spec), (std::vector<uint64_t>{1, 2}));
  fs::remove_all(spec.out_dir);
  fs::create_directories(spec.out_dir);
  {
    auto db = store::open_results_store(spec.db_path());
    EXPECT_EQ(register_frontier_repeats(*db, spec, pts), 4);
    EXPECT_EQ(register_frontier_repeats(*db, spec, pts), 4);  // idempotent
    auto trials = db->trials("r");
    ASSERT_EQ(trials.size(), 4u);
    std::set<std::tuple<std::string, double, double, int64_t>> keys;
    for (auto& t : trials) keys.insert({t.spec.model, t.spec.epochs, t.spec.lr, t.spec.seed});
    EXPECT_TRUE(keys.count({"nano-F0", 1, 0.4, 1}) && keys.count({"nano-F0", 1, 0.4, 2}) && keys.count({"nano-F0", 2, 0.2, 1}) &&
                keys.count({"nano-F0", 2, 0.2, 2}));
  }
  spec.frontier_repeats = 0;
  auto db = store::open_results_store(spec.db_path());
  EXPECT_EQ(register_frontier_repeats(*db, spec, pts), 0);
  fs::remove_all(spec.out_dir);
}

TEST(FrontierRepeats, AMixedStudyRepeatsEachFamilysOwnFrontier) {
  StudySpec spec = two_by_two(true);
  spec.models = {"nano-F0", "mini-ViT-Ti"};
  spec.name = "rm";
  spec.frontier_repeats = 1;
  spec.base.data = "digits";
  spec.out_dir = (fs::temp_directory_path() / ("nfscale_repeats_mixed_" + std::to_string(getpid()))).string();
  auto pt = [](const std::string& m, double e, double lr, double flops, double loss) {
    scaling::RunPoint p;
    p.model = m;
    p.epochs = e;
    p.lr = lr;
    p.flops = flops;
    p.loss = loss;
    return p;
  };
  // The ViT is worse than the NFNet at every compute: off a joint frontier, but on its own family's.
  std::vector<scaling::RunPoint> pts = {pt("nano-F0", 1, 1.6, 1e9, 0.8), pt("nano-F0", 2, 1.6, 2e9, 0.6),
                                        pt("mini-ViT-Ti", 1, 0.016, 3e9, 1.2),
                                        pt("mini-ViT-Ti", 2, 0.016, 6e9, 0.9)};
  fs::remove_all(spec.out_dir);
  fs::create_directories(spec.out_dir);
  {
    auto db = store::open_results_store(spec.db_path());
    EXPECT_EQ(register_frontier_repeats(*db, spec, pts), 4);
    std::set<std::pair<std::string, double>> keys;
    for (auto& t : db->trials("rm")) keys.insert({t.spec.model, t.spec.epochs});
    EXPECT_TRUE(keys.count({"mini-ViT-Ti", 1}) && keys.count({"mini-ViT-Ti", 2}) && keys.count({"nano-F0", 2}));
  }
  fs::remove_all(spec.out_dir);
}

// `nfscale study` end to end on a tiny study: sweep, seed repeats, the planner's choice trained for real, report.
TEST(StudyRun, PlannerCheckTrainsThePlanAndReportsPredictedAgainstAchieved) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const StudyDir sd("nfscale_study_run_",
                    "name = \"pc\"\nmodels = [\"mini-F0\", \"mini-F1\"]\nepochs = [0.5, 1, 2]\n"
                    "lrs = [1.6, 3.2]\nseeds = [0]\nfrontier_repeats = 1\nplan_check = 2\n",
                    "[train]\ndata = \"digits\"\nholdout = 300\nresolution = 20\nbatch = 32\n"
                    "eval_points = 1\nprecision = \"fp32\"\nclip = 0.1\n");
  const fs::path& dir = sd.dir;
  ASSERT_EQ(sd.run(), 0) << "see " << sd.log;
  std::ifstream plan_in(dir / "out" / "report" / "plan.json");
  ASSERT_TRUE(plan_in.good());
  nlohmann::json plan = nlohmann::json::parse(plan_in);
  ASSERT_TRUE(plan.contains("check")) << plan.dump(2);
  const auto& check = plan["check"];
  ASSERT_TRUE(check["done"].get<bool>()) << check.dump(2);
  EXPECT_DOUBLE_EQ(check["factor"].get<double>(), 2.0);
  const double achieved = check["achieved"]["holdout_loss"].get<double>();
  EXPECT_TRUE(std::isfinite(achieved));
  // The trained run is the plan: its FLOPs are the planned budget (to within one batch), 2x the largest trial.
  auto db = store::open_results_store((dir / "out" / "results.sqlite").string());
  double max_flops = 0;
  int repeats = 0;
  for (auto& t : db->trials("pc")) {
    ASSERT_EQ(t.status, store::TrialStatus::Done) << t.error;
    max_flops = std::max(max_flops, t.result->flops);
    repeats += t.spec.seed == 1;
  }
  EXPECT_GE(repeats, 2) << "every frontier point is repeated under seed 1";
  EXPECT_NEAR(check["budget_flops"].get<double>(), 2 * max_flops, 1e-6 * max_flops);
  EXPECT_NEAR(check["achieved"]["flops"].get<double>() / check["budget_flops"].get<double>(), 1.0, 0.05);
  // Judged by the interval for one run (the repeats measured seed noise), which contains the curve's interval.
  const auto& pl = check["plan"]["predicted_run_loss"];
  const auto& curve = check["plan"]["predicted_loss"];
  ASSERT_TRUE(pl["lo"].is_number()) << check.dump(2);
  EXPECT_LE(pl["lo"].get<double>(), curve["lo"].get<double>());
  EXPECT_GE(pl["hi"].get<double>(), curve["hi"].get<double>());
  const bool inside = achieved >= pl["lo"].get<double>() && achieved <= pl["hi"].get<double>();
  EXPECT_EQ(check["inside_power_interval"].get<bool>(), inside);
  // The report and the command's output say it.
  std::ifstream html(dir / "out" / "report" / "index.html");
  std::string text((std::istreambuf_iterator<char>(html)), {});
  EXPECT_NE(text.find("The planner checked by a real run"), std::string::npos);
  const std::string out = sd.output();
  EXPECT_NE(out.find("Planner check: planned "), std::string::npos) << out;
  EXPECT_NE(out.find("[study] seed repeats"), std::string::npos) << out;
  EXPECT_NE(out.find("trains beside the seed repeats"), std::string::npos) << out;
  // Once its run was trained, the check's worker went on to the main study's seed repeats (it may find none left).
  std::ifstream wlog(dir / "out" / "plan-check" / "worker.log");
  const std::string wtext((std::istreambuf_iterator<char>(wlog)), {});
  EXPECT_NE(wtext.find("[sweep] study 'pc': "), std::string::npos) << wtext;
  // --report-only reads the check back without training.
  ASSERT_EQ(sd.run("--report-only", false), 0);
  const std::string out2 = sd.output();
  EXPECT_NE(out2.find("Planner check: planned "), std::string::npos) << out2;
  fs::remove_all(dir);
}

// A mixed study end to end: both families trained with their own LRs and optimisers, fitted separately, and
// compared at equal compute in comparison.json, the report's first section and its two figures; with --finetune,
// both families' checkpoints fine-tuned and drawn on Fig. 1.
TEST(StudyRun, AMixedStudyComparesTheFamiliesAtEqualCompute) {
  ASSERT_TRUE(fs::exists(kBinary)) << "build the nfscale binary first: " << kBinary;
  const StudyDir sd("nfscale_study_mixed_",
                    "name = \"mx\"\nmodels = [\"nano-F0\", \"mini-ViT-Ti\"]\nepochs = [0.5, 1, 2, 4]\n"
                    "adaptive_lr = false\nseeds = [0]\n",
                    "[family_lrs]\nnfnet = [1.6]\nvit = [0.016]\n"
                    "[train]\ndata = \"digits\"\nholdout = 300\nresolution = 20\nbatch = 32\n"
                    "eval_points = 1\nprecision = \"fp32\"\nclip = -1\n");  // smoke's AGC 0.1 off
  const fs::path& dir = sd.dir;
  ASSERT_EQ(sd.run("--finetune --finetune-epochs 0.5 --finetune-max 2"), 0) << "see " << sd.log;
  // Each family trained at its own LR with its own optimiser.
  auto db = store::open_results_store((dir / "out" / "results.sqlite").string());
  int nfnet = 0, vit = 0;
  for (auto& t : db->trials("mx")) {
    ASSERT_EQ(t.status, store::TrialStatus::Done) << t.error;
    if (t.spec.model == "nano-F0") {
      EXPECT_DOUBLE_EQ(t.spec.lr, 1.6);
      ++nfnet;
    } else {
      EXPECT_DOUBLE_EQ(t.spec.lr, 0.016);
      ++vit;
    }
  }
  EXPECT_EQ(nfnet, 4);
  EXPECT_EQ(vit, 4);
  const fs::path report = dir / "out" / "report";
  std::ifstream cin_(report / "comparison.json");
  ASSERT_TRUE(cin_.good()) << "no comparison.json";
  const nlohmann::json c = nlohmann::json::parse(cin_);
  ASSERT_TRUE(c.contains("fits") && c["fits"].contains("nfnet") && c["fits"].contains("vit")) << c.dump(2);
  if (c.contains("levels") && !c["levels"].empty()) {
    EXPECT_EQ(c["family_a"], "NFNet");
    EXPECT_EQ(c["family_b"], "ViT");
    const double lo = c["overlap_flops"][0].get<double>(), hi = c["overlap_flops"][1].get<double>();
    EXPECT_LE(lo, hi);
    for (const auto& l : c["levels"]) {
      const double f = l["flops"].get<double>();
      EXPECT_GE(f, lo * (1 - 1e-9));
      EXPECT_LE(f, hi * (1 + 1e-9));
    }
    const std::string verdict = c["verdict"].get<std::string>();
    EXPECT_NE(verdict.find("At equal pre-training compute"), std::string::npos) << verdict;
  } else {
    // The fits could not be compared: the reason is recorded and shown, never an empty section.
    ASSERT_TRUE(c.contains("error") && c["error"].is_string()) << c.dump(2);
    EXPECT_FALSE(c["error"].get<std::string>().empty()) << c.dump(2);
  }
  for (const char* f : {"fig0_families.svg", "fig0_families.png", "fig0b_paper_scale.svg"})
    EXPECT_TRUE(fs::exists(report / f)) << f;
  std::ifstream html(report / "index.html");
  std::string text((std::istreambuf_iterator<char>(html)), {});
  EXPECT_NE(text.find("NFNet against ViT at equal compute"), std::string::npos);
  EXPECT_NE(text.find("published"), std::string::npos);
  // With --finetune, Fig. 1 holds the fine-tuned frontier checkpoints of both families.
  EXPECT_TRUE(fs::exists(report / "fig1_finetune_error.svg"));
  for (const std::string model : {"nano-F0", "mini-ViT-Ti"})
    EXPECT_TRUE(std::regex_search(text, std::regex("<title>" + model + ", [^<]*fine-tuned top-1 error")))
        << model << " has no fine-tuned point on Fig. 1";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nfscale::study
