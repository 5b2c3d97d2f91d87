// test_finetune.cpp - fine-tuning at the run level: source resolution and its errors, classifier replacement,
// channel conversion, repeated augmentation at constant compute, SAM with gradient accumulation / rho=0 / bf16,
// compute accounting, and malformed target data. Fixtures (pre-trained weights, run dirs, CSVs) are generated here;
// every run is mini-F0 on the built-in digits set at 24 px with a few steps, in fp32 unless stated.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nfscale/models/registry.h"
#include "nfscale/study/finetune.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::study {
namespace {
namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nfscale_ft_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Writes random-init mini-F0 weights for `classes` outputs and `channels` inputs, with the classifier set to a
// recognisable constant (7.0) so its replacement is visible. Returns the file.
std::string write_pretrained(const fs::path& dir, int64_t channels = 1, int64_t classes = 5) {
  models::ModelConfig mc;
  mc.name = "mini-F0";
  mc.num_classes = classes;
  mc.in_channels = channels;
  models::Classifier m = models::build_model(mc);
  {
    torch::NoGradGuard ng;
    for (auto& item : m->named_parameters(true))
      if (item.key().rfind("fc.", 0) == 0) item.value().fill_(7.0);
  }
  fs::create_directories(dir);
  const std::string path = (dir / "weights.pt").string();
  train::save_weights(path, *m);
  return path;
}

// A pre-training run dir: config.json naming the model (+ activation) and weights.pt.
fs::path write_run_dir(const fs::path& dir, const std::string& activation = "gelu") {
  write_pretrained(dir);
  train::TrainConfig c;
  c.model = "mini-F0";
  c.activation = activation;
  c.run_dir = dir.string();
  write_file_atomic((dir / "config.json").string(), train::to_json(c).dump(2));
  return dir;
}

// A small, fast fine-tuning request: 64 digits training examples, batch 16, 24 px, fp32, one loader thread.
FinetuneRequest small_request(const std::string& from, const fs::path& run_dir) {
  FinetuneRequest r;
  r.from = from;
  train::TrainConfig& c = r.config;
  c.model = from.empty() || fs::is_directory(from) ? "" : "mini-F0";
  c.train_examples = 64;
  c.epochs = 1.0;  // 4 steps of 16
  c.batch = 16;
  c.resolution = 24;
  c.eval_resolution = 24;
  c.precision = "fp32";
  c.loader_threads = 1;
  c.warmup_epochs = 0.0;
  c.dropout = 0.0;
  c.stochastic_depth = 0.0;
  c.checkpoint_seconds = 1e9;
  c.quiet = true;
  c.run_dir = run_dir.string();
  return r;
}

std::map<std::string, torch::Tensor> read_weights(const std::string& path, int64_t classes = 10,
                                                  int64_t channels = 1) {
  models::ModelConfig mc;
  mc.name = "mini-F0";
  mc.num_classes = classes;
  mc.in_channels = channels;
  models::Classifier m = models::build_model(mc);
  train::load_weights(path, *m);
  std::map<std::string, torch::Tensor> out;
  for (auto& item : m->named_parameters(true)) out[item.key()] = item.value().detach().clone();
  return out;
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p.string())); }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no UserError>";
}

// ---------------------------------------------------------------------------------------------------------------
TEST(FinetuneSource, RunDirGivesModelActivationWeightsAndChannels) {
  auto dir = write_run_dir(fresh_dir("src") / "pt", "relu");
  PretrainedSource s = resolve_source(dir.string(), "");
  EXPECT_EQ(s.model, "mini-F0");
  EXPECT_EQ(s.activation, "relu");
  EXPECT_EQ(s.weights_path, (dir / "weights.pt").string());
  EXPECT_EQ(s.in_channels, 1);
  FinetuneRequest r = small_request(dir.string(), dir.parent_path() / "ft");
  train::TrainConfig c = resolve_finetune_config(r);
  EXPECT_EQ(c.model, "mini-F0");
  EXPECT_EQ(c.activation, "relu");  // inherited ("" in the request)
  EXPECT_EQ(c.init_from, (dir / "weights.pt").string());
  EXPECT_EQ(c.channels, 1);
  // Scratch keeps model/channels from the source but loads nothing.
  r.scratch = true;
  EXPECT_EQ(resolve_finetune_config(r).init_from, "");
}

TEST(FinetuneSource, ErrorsNameThePathAndTheFix) {
  auto root = fresh_dir("errs");
  // Run dir whose pre-training has not finished (checkpoint only).
  auto unfinished = root / "unfinished";
  write_run_dir(unfinished);
  fs::rename(unfinished / "weights.pt", unfinished / "checkpoint.pt");
  std::string e = error_of([&] { resolve_source(unfinished.string(), ""); });
  EXPECT_NE(e.find("has not finished"), std::string::npos) << e;
  EXPECT_NE(e.find("--resume"), std::string::npos) << e;
  // A weights file without --model.
  const std::string w = write_pretrained(root / "w");
  e = error_of([&] { resolve_source(w, ""); });
  EXPECT_NE(e.find("--model"), std::string::npos) << e;
  // --model disagreeing with the run dir.
  auto rd = write_run_dir(root / "rd");
  e = error_of([&] { resolve_source(rd.string(), "mini-F1"); });
  EXPECT_NE(e.find("disagrees"), std::string::npos) << e;
  // Weights of another model.
  e = error_of([&] { resolve_source(w, "mini-F3+"); });
  EXPECT_NE(e.find(w), std::string::npos) << e;
  EXPECT_NE(e.find("mini-F3+"), std::string::npos) << e;
  e = error_of([&] { resolve_source(w, "mini-F1"); });
  EXPECT_NE(e.find("missing ("), std::string::npos) << e;  // every mismatching tensor listed (weights/model_io.h)
  // Not a checkpoint at all; missing path; directory without config.json.
  std::ofstream(root / "junk.pt") << "not a zip archive";
  e = error_of([&] { resolve_source((root / "junk.pt").string(), "mini-F0"); });
  EXPECT_NE(e.find("not an nfscale checkpoint"), std::string::npos) << e;
  e = error_of([&] { resolve_source((root / "missing").string(), "mini-F0"); });
  EXPECT_NE(e.find("no such file"), std::string::npos) << e;
  e = error_of([&] { resolve_source((root / "w").string(), ""); });
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  // Activation mismatch with the run dir.
  FinetuneRequest r = small_request(rd.string(), root / "ft");
  r.config.activation = "silu";
  e = error_of([&] { resolve_finetune_config(r); });
  EXPECT_NE(e.find("activation"), std::string::npos) << e;
  // Nothing to start from.
  r.from.clear();
  e = error_of([&] { resolve_finetune_config(r); });
  EXPECT_NE(e.find("--from"), std::string::npos) << e;
}

TEST(FinetuneSource, DefaultsAreTheDocumentedOnes) {
  train::TrainConfig d = finetune_defaults();
  EXPECT_EQ(d.sam_rho, 0.05);
  EXPECT_EQ(d.lr, 0.4);
  EXPECT_FALSE(d.flip);
  EXPECT_EQ(d.ema_decay, 0.0);
  EXPECT_EQ(d.warmup_epochs, 0.5);
  EXPECT_EQ(d.stochastic_depth, 0.1);
  EXPECT_EQ(d.data, "digits");
  EXPECT_NE(d.clip, 0.0);  // the family's clipping (AGC 0.01 for NFNets) stays on unless --clip 0
}

// ---------------------------------------------------------------------------------------------------------------
// The backbone is loaded, the classifier is replaced for the target's 10 classes (the source had 5, all 7.0):
// one step at a negligible LR leaves the backbone equal to the source and the new head N(0, 0.01^2), bias 0.
TEST(FinetuneRun, LoadsBackboneAndReplacesClassifier) {
  auto root = fresh_dir("load");
  const std::string w = write_pretrained(root / "pt", 1, 5);
  FinetuneRequest r = small_request(w, root / "ft");
  r.config.epochs = 0.25;  // 1 step
  r.config.lr = 1e-12;
  r.config.absolute_lr = true;
  r.config.sam_rho = 0.05;
  FinetuneResult res = finetune(r);
  ASSERT_TRUE(res.completed);
  EXPECT_EQ(res.steps, 1);
  auto src = read_weights(w, 5);
  auto out = read_weights(res.train.weights_path, 10);
  for (auto& [name, t] : out) {
    if (name.rfind("fc.", 0) == 0) continue;
    EXPECT_LT((t - src[name]).abs().max().item<double>(), 1e-9) << name;
  }
  const torch::Tensor fw = out["fc.weight"], fb = out["fc.bias"];
  EXPECT_EQ(fw.size(0), 10);
  EXPECT_NEAR(fw.std().item<double>(), 0.01, 0.001);  // 3840 samples: sampling error of the std ~1.1%
  EXPECT_LT(fb.abs().max().item<double>(), 1e-9);
  EXPECT_TRUE(std::isfinite(res.test_top1_err));
  EXPECT_TRUE(fs::exists(root / "ft" / "finetune.json"));
  EXPECT_EQ(read_json(root / "ft" / "finetune.json")["weights_from"], w);

  // Scratch baseline with the same settings: the backbone is NOT the source's.
  r.scratch = true;
  r.config.run_dir = (root / "scratch").string();
  FinetuneResult s = finetune(r);
  auto sw = read_weights(s.train.weights_path, 10);
  EXPECT_GT((sw["stem_conv0.weight"] - src["stem_conv0.weight"]).abs().max().item<double>(), 1e-3);
}

// An RGB pre-trained model fine-tunes on grey digits: the loader replicates the channel (config.channels = 3).
TEST(FinetuneRun, GreyTargetOnRgbModelUsesLoaderConversion) {
  auto root = fresh_dir("rgb");
  const std::string w = write_pretrained(root / "pt", 3, 10);
  FinetuneRequest r = small_request(w, root / "ft");
  r.config.epochs = 0.25;
  EXPECT_EQ(resolve_finetune_config(r).channels, 3);
  FinetuneResult res = finetune(r);
  EXPECT_EQ(res.source.in_channels, 3);
  EXPECT_TRUE(res.completed);
  EXPECT_TRUE(std::isfinite(res.test_loss));
}

// Repeated augmentation at constant compute: m=4 has the same steps and examples, 1/4 of the distinct-data passes.
TEST(FinetuneRun, MultiplicityKeepsStepsAndExamplesAndDividesPasses) {
  auto root = fresh_dir("mult");
  const std::string w = write_pretrained(root / "pt");
  std::map<int64_t, nlohmann::json> result;
  for (int64_t m : {1, 4}) {
    FinetuneRequest r = small_request(w, root / ("m" + std::to_string(m)));
    r.config.multiplicity = m;
    r.config.sam_rho = 0.0;
    const FinetuneCompute fc = finetune_compute(r);
    FinetuneResult res = finetune(r);
    ASSERT_TRUE(res.completed);
    result[m] = read_json(root / ("m" + std::to_string(m)) / "result.json");
    EXPECT_EQ(fc.steps, result[m]["steps"].get<int64_t>());
    EXPECT_EQ(fc.examples, result[m]["examples_seen"].get<int64_t>());
    EXPECT_DOUBLE_EQ(fc.distinct_epochs, result[m]["final_eval"]["epoch"].get<double>());
  }
  EXPECT_EQ(result[1]["steps"], 4);
  EXPECT_EQ(result[1]["steps"], result[4]["steps"]);
  EXPECT_EQ(result[1]["examples_seen"], 64);
  EXPECT_EQ(result[1]["examples_seen"], result[4]["examples_seen"]);
  // final_eval.epoch = loader position / N (distinct images consumed): 64/64 vs 16/64.
  EXPECT_DOUBLE_EQ(result[1]["final_eval"]["epoch"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(result[4]["final_eval"]["epoch"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(result[1]["train_flops"].get<double>(), result[4]["train_flops"].get<double>());
}

// SAM from the accumulated gradient: batch 16 as 4 micro-batches of 4 equals batch 16 in one pass. NFNets have no
// batch statistics and the loader's augmentation is seeded per example position, so the two runs see the same
// images and compute the same gradients up to fp32 summation order (relative ~1e-7 per sum). Over 3 steps with AGC,
// SAM normalisation and Nesterov the weight differences stay below 1e-5 absolute (weights are O(0.1-1)), while
// SAM itself moves the weights by > 1e-4 relative to plain SGD, so the test separates the two.
TEST(FinetuneSam, AccumulationMatchesFullBatch) {
  auto root = fresh_dir("accum");
  const std::string w = write_pretrained(root / "pt");
  auto run = [&](const std::string& name, int64_t micro, double rho) {
    FinetuneRequest r = small_request(w, root / name);
    r.config.epochs = 0.75;  // 3 steps of 16
    r.config.micro_batch = micro;
    r.config.sam_rho = rho;
    r.config.lr = 0.4;
    FinetuneResult res = finetune(r);
    EXPECT_EQ(res.steps, 3);
    return read_weights(res.train.weights_path);
  };
  auto full = run("full", 0, 0.05);
  auto accum = run("accum", 4, 0.05);
  auto sgd = run("sgd", 0, 0.0);
  double max_diff = 0.0, max_sam_effect = 0.0;
  for (auto& [name, t] : full) {
    max_diff = std::max(max_diff, (t - accum[name]).abs().max().item<double>());
    max_sam_effect = std::max(max_sam_effect, (t - sgd[name]).abs().max().item<double>());
  }
  std::printf("[   info   ] SAM accumulated vs full batch: max |dw| %.3g; SAM vs SGD: max |dw| %.3g\n", max_diff,
              max_sam_effect);
  // Observed ~1.5e-8 (fp32 summation order only); the SAM effect (~7e-5 after 3 steps) must be >= 10x the
  // tolerance, so the tolerance could not hide a wrong perturbation.
  EXPECT_LT(max_diff, 2e-6);
  EXPECT_GT(max_sam_effect, 2e-5);
  EXPECT_GT(max_sam_effect, 100 * max_diff);
}

// rho = 0 is plain SGD, bit for bit, and the fine-tuning wrapper adds nothing beyond its configuration: the same
// config given to run_training directly produces identical weights (the trainer seeds the new head from --seed).
TEST(FinetuneSam, RhoZeroIsPlainSgdBitwise) {
  auto root = fresh_dir("rho0");
  const std::string w = write_pretrained(root / "pt");
  FinetuneRequest r = small_request(w, root / "ft");
  r.config.epochs = 0.5;
  r.config.sam_rho = 0.0;
  r.config.dropout = 0.2;  // randomness on: still bit-identical (seeded per step)
  r.config.stochastic_depth = 0.1;
  FinetuneResult a = finetune(r);
  train::TrainConfig c = resolve_finetune_config(r);
  c.run_dir = (root / "plain").string();
  train::TrainResult b = train::run_training(c, false);
  auto wa = read_weights(a.train.weights_path), wb = read_weights(b.weights_path);
  for (auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb[name])) << name;
  EXPECT_EQ(a.flops, a.train.train_flops);  // one pass per step without SAM
}

TEST(FinetuneSam, Bf16RunsAndIsFinite) {
  auto root = fresh_dir("bf16");
  const std::string w = write_pretrained(root / "pt");
  FinetuneRequest r = small_request(w, root / "ft");
  r.config.epochs = 0.5;
  r.config.precision = "bf16";
  r.config.sam_rho = 0.05;
  r.config.stochastic_depth = 0.1;
  r.config.dropout = 0.2;
  FinetuneResult res = finetune(r);
  ASSERT_TRUE(res.completed);
  EXPECT_TRUE(std::isfinite(res.test_loss));
  EXPECT_GE(res.test_top1_err, 0.0);
  EXPECT_LE(res.test_top1_err, 1.0);
  for (auto& [name, t] : read_weights(res.train.weights_path))
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
  EXPECT_EQ(read_json(root / "ft" / "config.json")["precision"], "bf16");
}

// ---------------------------------------------------------------------------------------------------------------
TEST(FinetuneCompute, CountsSamSecondPassAndMatchesTheRun) {
  auto root = fresh_dir("compute");
  const std::string w = write_pretrained(root / "pt");
  FinetuneRequest r = small_request(w, root / "ft");
  r.config.epochs = 0.5;
  r.config.sam_rho = 0.05;
  const FinetuneCompute fc = finetune_compute(r);
  EXPECT_EQ(fc.train_examples, 64);
  EXPECT_EQ(fc.steps, 2);
  EXPECT_EQ(fc.examples, 32);
  EXPECT_EQ(fc.passes, 2);
  const int64_t macs = models::count_cost("mini-F0", 24, 1, 10).macs_per_image;
  EXPECT_EQ(fc.macs_per_image, macs);
  EXPECT_DOUBLE_EQ(fc.flops, 6.0 * double(macs) * 32 * 2);
  FinetuneResult res = finetune(r);
  EXPECT_DOUBLE_EQ(res.flops, fc.flops);
  r.config.sam_rho = 0.0;
  EXPECT_DOUBLE_EQ(finetune_compute(r).flops, fc.flops / 2);
  // Train resolution sets the compute; the eval resolution may differ.
  r.config.eval_resolution = 32;
  EXPECT_EQ(resolve_finetune_config(r).eval_res(), 32);
  EXPECT_EQ(finetune_compute(r).macs_per_image, macs);
}

TEST(FinetuneData, MalformedDigitsRowIsANamedError) {
  auto root = fresh_dir("baddigits");
  const std::string w = write_pretrained(root / "pt");
  const fs::path csv = root / "digits.csv";
  {
    std::ofstream out(csv);
    for (int i = 0; i < 20; ++i) {
      for (int k = 0; k < 64; ++k) out << (k + i) % 17 << ",";
      out << i % 10 << "\n";
    }
    out << "1,2,3\n";  // line 21: 3 fields
  }
  FinetuneRequest r = small_request(w, root / "ft");
  r.config.data = "digits:" + csv.string();
  r.config.train_examples = 0;
  const std::string e = error_of([&] { finetune(r); });
  EXPECT_NE(e.find(csv.string() + ":21"), std::string::npos) << e;
  EXPECT_NE(e.find("expected 65"), std::string::npos) << e;
}

}  // namespace
}  // namespace nfscale::study
