// test_engine.cpp - the training loop in-process on a digits subset: fractional budgets and the schedule's end
// point, loader positions across a stop/resume, the stored config winning on resume, bit-identical in-process
// resume, and the config.json round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/config.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/error.h"
#include "train_test_util.h"

namespace nfscale::train {
namespace {
using namespace testing;

// Reads the loop state of <run_dir>/checkpoint.pt into a fresh mini-F0 + optimiser (EMA not read).
LoopState read_state(const std::string& run_dir) {
  models::Classifier m = digits_model();
  std::vector<optim::ParamSpec> specs;
  for (auto& p : m->param_info()) specs.push_back({p.name, p.param, p.weight_decay, p.agc});
  optim::SgdAgc opt(specs);
  return load_checkpoint(run_dir + "/checkpoint.pt", *m, opt, nullptr);
}

std::vector<nlohmann::json> train_lines(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  for (auto& j : read_jsonl(run_dir + "/metrics.jsonl"))
    if (j["type"] == "train") out.push_back(j);
  return out;
}

TEST(Budget, FractionalEpochsGiveCeilStepsAndEndAtZeroLr) {
  const int64_t n = 200, batch = 16;
  for (double epochs : {0.25, 0.5}) {
    const std::string dir = fresh_dir("budget" + std::to_string(int(epochs * 100)));
    TrainConfig c = small_config(dir, n, batch);
    c.epochs = epochs;
    c.lr = 0.2;
    TrainResult r = run_training(c, false);
    // ceil(epochs * N / batch) computed in integers: 0.25 -> ceil(50/16) = 4, 0.5 -> ceil(100/16) = 7.
    const int64_t examples = epochs == 0.25 ? 50 : 100;
    const int64_t expect_steps = (examples + batch - 1) / batch;
    EXPECT_TRUE(r.completed);
    EXPECT_EQ(r.steps, expect_steps) << "epochs " << epochs;
    EXPECT_EQ(r.train_examples, n);
    const auto result = nlohmann::json::parse(slurp(dir + "/result.json"));
    EXPECT_EQ(result["steps"].get<int64_t>(), expect_steps);
    EXPECT_EQ(result["total_steps"].get<int64_t>(), expect_steps);
    EXPECT_EQ(result["examples_seen"].get<int64_t>(), expect_steps * batch);
    EXPECT_TRUE(result["completed"].get<bool>());

    const auto lines = train_lines(dir);
    ASSERT_EQ(static_cast<int64_t>(lines.size()), expect_steps);  // log_every 1
    for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i]["step"].get<int64_t>(), int64_t(i) + 1);
    EXPECT_DOUBLE_EQ(lines.front()["lr"].get<double>(), 0.2 * batch / 256.0);  // no warm-up: the peak first
    EXPECT_EQ(lines.back()["step"].get<int64_t>(), expect_steps);
    EXPECT_EQ(lines.back()["lr"].get<double>(), 0.0) << "the last step must use LR exactly 0";
    for (size_t i = 1; i < lines.size(); ++i)  // cosine: non-increasing
      EXPECT_LE(lines[i]["lr"].get<double>(), lines[i - 1]["lr"].get<double>());
    EXPECT_TRUE(std::filesystem::exists(dir + "/weights.pt"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/weights_ema.pt"));
  }
}

TEST(Resume, PositionContinuesWhereItStoppedAndWeightsMatchAnUninterruptedRun) {
  const int64_t n = 96, batch = 16;  // 6 steps per epoch; 1.5 epochs = 9 steps crosses an epoch boundary
  const std::string ref_dir = fresh_dir("resume_ref"), dir = fresh_dir("resume_cut");
  TrainConfig ref = small_config(ref_dir, n, batch);
  ref.epochs = 1.5;
  TrainResult full = run_training(ref, false);
  ASSERT_TRUE(full.completed);
  ASSERT_EQ(full.total_steps, 9);

  TrainConfig c = ref;
  c.run_dir = dir;
  TrainResult first = run_training(c, false, stop_after(4));
  EXPECT_TRUE(first.interrupted);
  EXPECT_FALSE(first.completed);
  EXPECT_EQ(first.steps, 4);
  LoopState s = read_state(dir);
  EXPECT_EQ(s.step, 4);
  EXPECT_EQ(s.position, 4 * batch) << "the loader position must be exactly the distinct examples consumed";
  EXPECT_EQ(s.examples_seen, 4 * batch);
  EXPECT_EQ(s.total_steps, 9);

  TrainResult second = run_training(c, true, stop_after(3));  // a second stop, after the epoch boundary (step 7)
  EXPECT_TRUE(second.interrupted);
  s = read_state(dir);
  EXPECT_EQ(s.step, 7);
  EXPECT_EQ(s.position, 7 * batch);

  TrainResult last = run_training(c, true);
  EXPECT_TRUE(last.completed);
  EXPECT_EQ(last.steps, 9);
  s = read_state(dir);
  EXPECT_EQ(s.step, 9);
  EXPECT_EQ(s.position, 9 * batch);
  EXPECT_EQ(last.examples_seen, full.examples_seen);

  // metrics: every step logged once, in order, and its epoch is step * batch / N (positions never jump or repeat).
  const auto lines = train_lines(dir);
  ASSERT_EQ(lines.size(), 9u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["step"].get<int64_t>(), int64_t(i) + 1);
    EXPECT_DOUBLE_EQ(lines[i]["epoch"].get<double>(), double((i + 1) * batch) / double(n));
  }
  // The interrupted run's LRs are the uninterrupted run's.
  const auto ref_lines = train_lines(ref_dir);
  ASSERT_EQ(ref_lines.size(), 9u);
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(lines[i]["lr"].get<double>(), ref_lines[i]["lr"].get<double>());
    EXPECT_EQ(lines[i]["loss"].get<double>(), ref_lines[i]["loss"].get<double>()) << "step " << i + 1;
  }

  // Final weights (raw and EMA) are bitwise those of the uninterrupted run.
  for (const char* file : {"/weights.pt", "/weights_ema.pt"}) {
    models::Classifier a = digits_model(), b = digits_model();
    load_weights(ref_dir + file, *a);
    load_weights(dir + file, *b);
    std::string first_diff;
    EXPECT_EQ(count_different(*a, *b, &first_diff), 0) << file << ": first differing tensor " << first_diff;
  }
}

TEST(Resume, StoredConfigWinsOverTheCommandLine) {
  const std::string dir = fresh_dir("stored_cfg");
  TrainConfig c = small_config(dir, 64, 16);  // 4 steps
  c.lr = 0.1;
  ASSERT_TRUE(run_training(c, false, stop_after(2)).interrupted);

  TrainConfig other = c;  // a different model, LR and budget on the resuming "command line"
  other.model = "mini-F1";
  other.lr = 0.7;
  other.epochs = 3.0;
  other.quiet = true;
  TrainResult r = run_training(other, true);
  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.total_steps, 4);
  EXPECT_EQ(r.params, models::count_cost("mini-F0", c.resolution, 1, 10).params) << "resumed with the wrong model";
  const TrainConfig stored =
      config_from_json(nlohmann::json::parse(slurp(dir + "/config.json")), dir + "/config.json");
  EXPECT_EQ(stored.model, "mini-F0");
  EXPECT_EQ(stored.lr, 0.1);
  EXPECT_EQ(stored.epochs, 1.0);
  const auto lines = train_lines(dir);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_DOUBLE_EQ(lines[2]["lr"].get<double>(), 0.1 * 16 / 256.0 * 0.5 * (1 + std::cos(M_PI * 2 / 3)));
}

TEST(Resume, AutoPrecisionIsResolvedOnceAndStoredAndOldAutoRunsResumeInFp32) {
  const std::string dir = fresh_dir("auto_prec");
  TrainConfig c = small_config(dir, 64, 16);  // 4 steps
  c.precision = "auto";
  ASSERT_TRUE(run_training(c, false, stop_after(2)).interrupted);
  auto stored = [&] {
    return config_from_json(nlohmann::json::parse(slurp(dir + "/config.json")), dir + "/config.json");
  };
  EXPECT_EQ(stored().precision, resolve_precision("auto", "mini-F0"));  // the choice, not "auto"
  // A run dir written before "auto" was resolved at the start: its stored "auto" meant fp32, and resumes as fp32.
  auto j = nlohmann::json::parse(slurp(dir + "/config.json"));
  j["precision"] = "auto";
  { std::ofstream(dir + "/config.json") << j.dump(2); }
  TrainConfig other = c;
  other.precision = "bf16";  // the resuming command line does not override the stored choice
  EXPECT_TRUE(run_training(other, true).completed);
  EXPECT_EQ(stored().precision, "fp32");
}

TEST(Resume, WithoutCheckpointStartsFresh) {
  const std::string dir = fresh_dir("no_ckpt");
  TrainResult r = run_training(small_config(dir, 32, 16), /*resume=*/true);
  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.steps, 2);
}

TEST(Resume, CheckpointOfAnotherBudgetIsRejected) {
  const std::string dir = fresh_dir("other_budget");
  TrainConfig c = small_config(dir, 64, 16);
  ASSERT_TRUE(run_training(c, false, stop_after(1)).interrupted);
  // Without config.json the command line is used; a different budget must not silently continue the checkpoint.
  std::filesystem::remove(dir + "/config.json");
  c.epochs = 2.0;
  try {
    run_training(c, true);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.pt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("steps"), std::string::npos) << e.what();
  }
}

TEST(Seed, InitialWeightsAreAFunctionOfTheSeedOnly) {
  // stop_after(0): the checkpoint holds the initial weights. Same seed -> same weights even after the process's
  // global RNG has moved on; another seed -> other weights.
  auto initial = [](const std::string& name, uint64_t seed) {
    const std::string dir = fresh_dir(name);
    TrainConfig c = small_config(dir, 32, 16);
    c.seed = seed;
    EXPECT_TRUE(run_training(c, false, stop_after(0)).interrupted);
    models::Classifier m = digits_model();
    load_weights(dir + "/checkpoint.pt", *m);
    return m;
  };
  auto a = initial("seed_a", 1);
  torch::randn({1000});  // disturb the global generator
  auto b = initial("seed_b", 1);
  auto c = initial("seed_c", 2);
  EXPECT_EQ(count_different(*a, *b), 0);
  EXPECT_GT(count_different(*a, *c), 10);
}

TEST(Config, JsonRoundTripKeepsEveryField) {
  TrainConfig c;
  c.model = "mini-F3+";
  c.data = "cifar10:/x/y";
  c.test_data = "none";
  c.holdout = 123;
  c.train_examples = 456;
  c.eval_ema = true;
  c.resolution = 48;
  c.eval_resolution = 64;
  c.channels = 3;
  c.epochs = 0.25;
  c.batch = 64;
  c.micro_batch = 16;
  c.lr = 0.4;
  c.absolute_lr = true;
  c.warmup_epochs = 0.1;
  c.momentum = 0.8;
  c.nesterov = false;
  c.weight_decay = 5e-5;
  c.clip = 0.02;
  c.optimizer = "adamw";
  c.beta1 = 0.85;
  c.beta2 = 0.98;
  c.adam_eps = 1e-6;
  c.decay_convention = "torch";
  c.pos_embed_resample = "bilinear";
  c.label_smoothing = 0.2;
  c.ema_decay = 0.999;
  c.stochastic_depth = 0.1;
  c.dropout = 0.3;
  c.activation = "silu";
  c.precision = "bf16";
  c.channels_last = false;
  c.sam_rho = 0.05;
  c.sam_adaptive = true;
  c.augment = false;
  c.crop_min_area = 0.5;
  c.flip = false;
  c.randaugment_layers = 2;
  c.randaugment_magnitude = 9;
  c.mixup = 0.2;
  c.cutmix = 1.0;
  c.multiplicity = 4;
  c.seed = 18446744073709551557ull;  // > 2^63: must survive as unsigned
  c.loader_threads = 3;
  c.eval_every = 7;
  c.eval_points = 5;
  c.checkpoint_seconds = 33.5;
  c.checkpoint_steps = 11;
  c.log_every = 3;
  c.run_dir = "runs/x";
  c.init_from = "runs/y/weights.pt";
  c.quiet = true;
  c.ws_form = "timm";
  c.device = "cuda:1";
  c.dedup = "on";
  const nlohmann::json j = to_json(c);
  const nlohmann::json j2 = nlohmann::json::parse(j.dump());  // through text, as config.json is
  const TrainConfig back = config_from_json(j2, "config.json");
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.seed, c.seed);
  EXPECT_EQ(back.epochs, 0.25);
  // Every field differs from the default, so a field missing from the mapping would show up here.
  const nlohmann::json defaults = to_json(TrainConfig{});
  for (auto it = j.begin(); it != j.end(); ++it) EXPECT_NE(defaults[it.key()], it.value()) << it.key();
  EXPECT_EQ(j.size(), defaults.size());
}

TEST(Config, UnknownKeyAndWrongTypeNameTheField) {
  try {
    config_from_json(nlohmann::json{{"model", "mini-F0"}, {"learning_rate", 0.1}}, "my.json");
    FAIL() << "unknown key accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("my.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("learning_rate"), std::string::npos) << e.what();
  }
  try {
    config_from_json(nlohmann::json{{"batch", "big"}}, "my.json");
    FAIL() << "wrong type accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("batch"), std::string::npos) << e.what();
  }
}

TEST(Recipe, DefaultNfnetLrKeepsTheAbsoluteLrAt1p6BelowBatch4096AndScalesAbove) {
  auto resolved = [](const std::string& model, int64_t batch, double lr, bool absolute) {
    TrainConfig c;
    c.model = model;
    c.batch = batch;
    c.lr = lr;
    c.absolute_lr = absolute;
    resolve_recipe(c);
    return c;
  };
  // Absolute LR = lr * batch / 256: 1.6 at batch 32, 128 and 4096; linear above (the paper's rule).
  for (int64_t b : {32, 128, 4096}) EXPECT_NEAR(resolved("mini-F0", b, 0.0, false).lr * b / 256.0, 1.6, 1e-12) << b;
  EXPECT_NEAR(resolved("mini-F0", 8192, 0.0, false).lr, 0.1, 1e-12);
  // An LR the user gave is never changed; nor is an absolute default.
  EXPECT_EQ(resolved("mini-F0", 32, 0.1, false).lr, 0.1);
  EXPECT_EQ(resolved("mini-F0", 32, 0.0, true).lr, 0.1);
  // ViTs keep their own default (AdamW).
  EXPECT_NEAR(resolved("mini-ViT-S", 32, 0.0, false).lr, 2.5e-4, 1e-12);
}

TEST(Precision, AutoIsFp32OnTheMiniLadderAndBf16ForFullMembersWithNativeBf16) {
  EXPECT_EQ(resolve_precision("auto", "mini-F3"), "fp32");
  EXPECT_EQ(resolve_precision("auto", "mini-F7+"), "fp32");
  EXPECT_EQ(resolve_precision("auto", "F0"), cpu_has_bf16() ? "bf16" : "fp32");
  EXPECT_EQ(resolve_precision("bf16", "mini-F0"), "bf16");  // explicit choices pass through
  EXPECT_EQ(resolve_precision("fp32", "F7+"), "fp32");
}

}  // namespace
}  // namespace nfscale::train
