// test_vit_training.cpp - the NFNet guarantees for a ViT trained with AdamW: accumulation equals the large batch in
// fp64, bit-identical resume (raw and EMA weights) with the family's recipe resolved and stored, the optimiser kind
// checked on resume, bf16 autocast, SAM with repeated augmentation, and fine-tuning at a new resolution with the
// position embedding resampled.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers expect_same_weights share names with another test file's).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/data/loader.h"
#include "nfscale/models/registry.h"
#include "nfscale/models/vit/vit.h"
#include "nfscale/optim/adamw.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/autocast.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/step.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/error.h"
#include "train_test_util.h"

namespace nfscale::train {
namespace {
using namespace testing;

constexpr int64_t kRes = 16, kClasses = 10;

models::Classifier vit_model(int64_t res = kRes, uint64_t seed = 0) {
  torch::manual_seed(seed);
  models::ModelConfig mc;
  mc.name = "mini-ViT-Ti";
  mc.num_classes = kClasses;
  mc.in_channels = 1;
  mc.resolution = res;
  return models::build_model(mc);
}

// weights.pt and weights_ema.pt of two run dirs are bitwise equal.
void expect_same_weights(const std::string& ref_dir, const std::string& dir) {
  for (const char* file : {"/weights.pt", "/weights_ema.pt"}) {
    auto a = vit_model(), b = vit_model(kRes, 1);
    load_weights(ref_dir + file, *a);
    load_weights(dir + file, *b);
    std::string first;
    EXPECT_EQ(count_different(*a, *b, &first), 0) << file << ": first differing tensor " << first;
  }
}

TrainConfig vit_config(const std::string& dir) {
  TrainConfig c = small_config(dir, 96, 16);
  c.model = "mini-ViT-Ti";
  c.resolution = kRes;
  c.ema_decay = 0.99;
  return c;
}

TEST(ViTAccumulation, FourMicroBatchesOfFourEqualOneBatchOfSixteenWithAdamW) {
  auto make = [] {
    auto m = vit_model(kRes, 7);
    m->to(torch::kFloat64);
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())  // the big_vision head starts at zero: make every gradient non-zero
      if (p.key().rfind("head.", 0) == 0) p.value().normal_(0.0, 0.5, at::make_generator<at::CPUGeneratorImpl>(3));
    m->train();
    return m;
  };
  auto big_model = make(), acc_model = make();
  optim::AdamWOptions o;
  o.weight_decay = 0.1;
  o.peak_lr = 1e-2;
  o.clip_global_norm = 0.05;  // small enough to clip
  optim::AdamW big_opt(big_model->param_info(), o), acc_opt(acc_model->param_info(), o);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  for (int step = 0; step < 2; ++step) {
    data::Batch big;
    big.images = torch::randn({16, 1, kRes, kRes}, gen, torch::dtype(torch::kFloat64));                       // [16,1,R,R]
    big.targets = torch::softmax(torch::randn({16, kClasses}, gen, torch::dtype(torch::kFloat64)), 1);        // [16,K]
    big.labels = big.targets.argmax(1);
    std::vector<data::Batch> parts;
    for (int64_t s = 0; s < 16; s += 4)
      parts.push_back({big.images.narrow(0, s, 4), big.targets.narrow(0, s, 4), big.labels.narrow(0, s, 4)});
    const double lb = accumulate_gradients(*big_model, {big}, 16, false, false, big_opt);
    const double la = accumulate_gradients(*acc_model, parts, 16, false, false, acc_opt);
    EXPECT_NEAR(la, lb, 1e-12 * std::abs(lb));
    const auto sb = big_opt.step(1e-2), sa = acc_opt.step(1e-2);
    EXPECT_EQ(sb.units_clipped, 1) << "global-norm clipping must act for the test to cover it";
    EXPECT_NEAR(sa.grad_norm, sb.grad_norm, 1e-12 * sb.grad_norm);
    const auto pb = big_model->param_info(), pa = acc_model->param_info();
    double worst = 0;
    for (size_t i = 0; i < pb.size(); ++i)
      worst = std::max(worst, (pa[i].param - pb[i].param).abs().max().item<double>());
    EXPECT_LT(worst, 1e-12) << "step " << step;
  }
}

TEST(ViTResume, StopAndResumeIsBitIdenticalAndTheFamilyRecipeIsStored) {
  const std::string ref_dir = fresh_dir("vit_ref"), dir = fresh_dir("vit_cut");
  TrainConfig ref = vit_config(ref_dir);
  ref.epochs = 1.5;  // 9 steps, across an epoch boundary
  ASSERT_TRUE(run_training(ref, false).completed);
  const auto stored = nlohmann::json::parse(slurp(ref_dir + "/config.json"));
  EXPECT_EQ(stored["optimizer"], "adamw");
  EXPECT_EQ(stored["lr"].get<double>(), 2.5e-4);
  EXPECT_EQ(stored["weight_decay"].get<double>(), 1e-4);
  EXPECT_EQ(stored["clip"].get<double>(), 1.0);

  TrainConfig c = ref;
  c.run_dir = dir;
  auto calls = std::make_shared<int64_t>(0);
  TrainHooks stop;
  stop.should_stop = [calls] { return (*calls)++ >= 4; };
  EXPECT_TRUE(run_training(c, false, stop).interrupted);
  EXPECT_TRUE(run_training(c, true).completed);
  expect_same_weights(ref_dir, dir);
  // The checkpoint records its optimiser kind: resuming it with SGD+AGC is refused, naming the field.
  auto m = vit_model();
  optim::SgdAgc sgd(m->param_info());
  try {
    load_checkpoint(dir + "/checkpoint.pt", *m, sgd, nullptr);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.kind"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("adamw"), std::string::npos) << e.what();
  }
}

// kill -9 of `nfscale train --model mini-ViT-Ti` (the CLI, a checkpoint every step) at 4 moments tied to progress,
// then resume to the end: the weights equal an uninterrupted run's, bit for bit.
TEST(ViTResume, KillNineThenResumeThroughTheCliIsBitIdentical) {
  NFSCALE_REQUIRE_BINARY();
  auto args = [](const std::string& dir, bool resume) {
    std::vector<std::string> a{"--threads", "1", "train", "--model", "mini-ViT-Ti", "--data", "digits", "--test-data",
                               "none", "--train-examples", "320", "--res", "16", "--batch", "16", "--epochs", "1",
                               "--precision", "fp32", "--loader-threads", "1", "--checkpoint-steps", "1",
                               "--log-every", "1", "--seed", "5", "--quiet", "--run-dir", dir};
    if (resume) a.push_back("--resume");
    return a;
  };
  const std::string ref_dir = fresh_dir("vit_cli_ref"), dir = fresh_dir("vit_cli_kill");
  ASSERT_EQ(run_cli(args(ref_dir, false), ref_dir).code, 0);
  auto lines = [&] {
    size_t n = 0;
    if (std::filesystem::exists(dir + "/metrics.jsonl"))
      for (auto& j : read_jsonl(dir + "/metrics.jsonl")) n += j["type"] == "train";
    return n;
  };
  int kills = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const size_t target = lines() + 2 + size_t(attempt);  // 2-5 more steps, then kill mid-run
    const pid_t pid = spawn_cli(args(dir, true), dir + "/out", dir + "/err");
    ASSERT_GT(pid, 0);
    int code = 0;
    bool exited = false;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (lines() < target && std::chrono::steady_clock::now() < give_up && !(exited = try_wait(pid, &code)))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (exited || try_wait(pid, &code)) break;  // finished before the kill
    ::kill(pid, SIGKILL);
    ASSERT_EQ(wait_status(pid), 1000 + SIGKILL);
    ++kills;
  }
  EXPECT_GE(kills, 3) << "the kills did not land inside the run";
  ASSERT_EQ(run_cli(args(dir, true), dir).code, 0) << slurp(dir + "/err");
  expect_same_weights(ref_dir, dir);
}

TEST(ViTTraining, Bf16AutocastStaysCloseToFp32) {
  auto m = vit_model();
  m->eval();
  auto x = torch::randn({8, 1, kRes, kRes});
  torch::Tensor y32, y16;
  {
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
      if (p.key().rfind("head.", 0) == 0) p.value().normal_(0.0, 0.5);
    y32 = m->forward(x);
    AutocastScope autocast(true);  // the trainer's bf16 scope
    y16 = m->forward(x).to(torch::kFloat);
  }
  EXPECT_LT((y16 - y32).abs().max().item<double>(), 0.05 * (1.0 + y32.abs().max().item<double>()));
  EXPECT_GT((y16 - y32).abs().max().item<double>(), 0.0) << "autocast did not change the arithmetic";
  const std::string dir = fresh_dir("vit_bf16");
  TrainConfig c = vit_config(dir);
  c.precision = "bf16";
  c.epochs = 0.34;
  const TrainResult r = run_training(c, false);
  EXPECT_TRUE(r.completed);
  for (const auto& j : read_jsonl(dir + "/metrics.jsonl"))
    if (j["type"] == "train") {
      EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
    }
}

TEST(ViTTraining, SamWithRepeatedAugmentationTrainsAndCountsTwoPasses) {
  const std::string dir = fresh_dir("vit_sam");
  TrainConfig c = vit_config(dir);
  c.sam_rho = 0.05;
  c.multiplicity = 2;
  c.epochs = 0.34;
  const TrainResult r = run_training(c, false);
  ASSERT_TRUE(r.completed);
  EXPECT_EQ(r.train_flops, 2.0 * 6.0 * double(r.macs_per_image) * double(r.examples_seen));
  for (const auto& j : read_jsonl(dir + "/metrics.jsonl"))
    if (j["type"] == "train") {
      EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
    }
}

TEST(ViTTraining, FineTuningAtANewResolutionResamplesThePositionEmbedding) {
  const std::string pre = fresh_dir("vit_pre"), ft = fresh_dir("vit_ft");
  TrainConfig c = vit_config(pre);
  c.epochs = 0.34;
  ASSERT_TRUE(run_training(c, false).completed);
  TrainConfig f = vit_config(ft);
  f.init_from = pre + "/weights.pt";
  f.resolution = 24;  // 4x4 -> 6x6 grid
  f.epochs = 0.17;
  f.lr = 1e-12;  // the weights barely move: compare with the resampled pre-trained embedding
  f.ema_decay = 0;
  ASSERT_TRUE(run_training(f, false).completed);
  auto src = vit_model(kRes), dst = vit_model(24);
  load_weights(pre + "/weights.pt", *src);
  load_weights(ft + "/weights.pt", *dst);
  auto* s = dynamic_cast<models::ViTImpl*>(src.get());
  auto* d = dynamic_cast<models::ViTImpl*>(dst.get());
  ASSERT_TRUE(s && d);
  ASSERT_EQ(d->pos_embed.size(1), 36);
  auto expect = models::resample_pos_embed(s->pos_embed.detach(), 0, 4, 4, 6, 6, "bicubic");
  EXPECT_LT((d->pos_embed - expect).abs().max().item<double>(), 1e-6);
}

}  // namespace
}  // namespace nfscale::train
