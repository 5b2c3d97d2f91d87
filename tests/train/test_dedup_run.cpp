// test_dedup_run.cpp - near-duplicate removal in training runs (TrainConfig::dedup): setup_data removes exactly the
// planted copies of held-out and test images (before the train_examples subset), a run records them atomically in
// <run_dir>/dedup.json, a resumed run reads the record and trains on the same indices (weights bitwise equal to an
// uninterrupted run), a record that no longer fits the data is refused, the on-disk cache is keyed by content, and a
// bad setting names the field.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../data/synthetic_images.h"
#include "nfscale/data/dataset.h"
#include "nfscale/data/dedup.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/train/config.h"
#include "nfscale/train/data_setup.h"
#include "nfscale/train/dedup_cache.h"
#include "nfscale/train/trainer.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "train_test_util.h"

namespace nfscale::train {
namespace {
using namespace testing;
using data::Image;

std::string be32(uint32_t v) { return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)}; }

// One MNIST-layout split: <dir>/<prefix>-images-idx3-ubyte and -labels-idx1-ubyte (28x28 grey).
void write_split(const std::string& dir, const std::string& prefix, const std::vector<Image>& images,
                 const std::vector<int64_t>& labels) {
  std::string im = be32(0x803) + be32(static_cast<uint32_t>(images.size())) + be32(28) + be32(28);
  std::string lb = be32(0x801) + be32(static_cast<uint32_t>(labels.size()));
  for (auto& i : images) im.append(i.pixels.begin(), i.pixels.end());
  for (int64_t l : labels) lb.push_back(static_cast<char>(l));
  write_file_atomic(dir + "/" + prefix + "-images-idx3-ubyte", im);
  write_file_atomic(dir + "/" + prefix + "-labels-idx1-ubyte", lb);
}

constexpr int64_t kTrain = 100, kTest = 30, kHoldout = 20;

// 100 training and 30 test images (distinct smooth blob images, labels i % 10) with four planted near-duplicates
// in the training part of the split: an exact copy, a 1-px shift and a 28->32->28 rescaled copy of test images, and
// a rescaled copy of a held-out image (a within-train duplicate across the split).
struct Planted {
  std::string dir;
  data::Split split;
  std::vector<int64_t> copies;  // dataset indices of the planted copies, ascending
};

Planted planted_data(const std::string& name) {
  Planted p;
  p.dir = fresh_dir(name);
  std::vector<Image> train, test;
  std::vector<int64_t> train_labels, test_labels;
  for (int64_t i = 0; i < kTrain; ++i) {
    train.push_back(data::testing::blobs(40000 + static_cast<uint64_t>(i)));
    train_labels.push_back(i % 10);
  }
  for (int64_t i = 0; i < kTest; ++i) {
    test.push_back(data::testing::blobs(60000 + static_cast<uint64_t>(i)));
    test_labels.push_back(i % 10);
  }
  p.split = data::stratified_holdout_split(train_labels, 10, kHoldout, 0);  // as setup_data carves it
  const auto& t = p.split.train;
  train[static_cast<size_t>(t[3])] = test[4];
  train[static_cast<size_t>(t[10])] = data::testing::shifted(test[7], 1, 0, 0);
  train[static_cast<size_t>(t[25])] = data::testing::rescaled(data::testing::rescaled(test[9], 32), 28);
  train[static_cast<size_t>(t[40])] =
      data::testing::rescaled(data::testing::rescaled(train[static_cast<size_t>(p.split.holdout[2])], 32), 28);
  p.copies = {t[3], t[10], t[25], t[40]};
  std::sort(p.copies.begin(), p.copies.end());
  write_split(p.dir, "train", train, train_labels);
  write_split(p.dir, "t10k", test, test_labels);
  return p;
}

// Every test of this file caches removals in a directory of its own (not the user's cache).
struct CacheDirEnvironment : ::testing::Environment {
  void SetUp() override { ::setenv("NFSCALE_CACHE_DIR", fresh_dir("dedup_cache_dir").c_str(), 1); }
};
const auto* const kCacheEnv = ::testing::AddGlobalTestEnvironment(new CacheDirEnvironment);

TrainConfig dedup_config(const Planted& p, const std::string& run_dir) {
  TrainConfig c = small_config(run_dir, 0, 16);
  c.data = "mnist:" + p.dir;
  c.test_data = "";  // the test split of the same directory
  c.holdout = kHoldout;
  c.dedup = "on";
  return c;
}

TEST(DedupRun, SetupDataRemovesExactlyThePlantedCopiesBeforeTheSubset) {
  const Planted p = planted_data("dedup_setup");
  const TrainConfig c = dedup_config(p, fresh_dir("dedup_setup_run"));
  const RunData d = setup_data(c);
  ASSERT_TRUE(d.dedup.applied);
  EXPECT_FALSE(d.dedup.from_record);
  EXPECT_EQ(d.dedup.removed, p.copies);
  EXPECT_EQ(d.dedup.train_before, kTrain - kHoldout);
  EXPECT_EQ(d.train_indices, data::remove_indices(p.split.train, p.copies));
  EXPECT_EQ(d.holdout_indices, p.split.holdout);
  EXPECT_EQ(d.test_indices.size(), static_cast<size_t>(kTest));
  // The record: per compared set, what matched; the removed list; the options.
  const nlohmann::json& r = d.dedup.record;
  EXPECT_EQ(r["removed"].get<std::vector<int64_t>>(), p.copies);
  EXPECT_EQ(r["train_after"].get<int64_t>(), kTrain - kHoldout - 4);
  ASSERT_EQ(r["sets"].size(), 2u);
  EXPECT_EQ(r["sets"][0]["set"], "holdout");
  EXPECT_EQ(r["sets"][0]["other_matched"].get<int64_t>(), 1);
  EXPECT_EQ(r["sets"][1]["set"], "test");
  EXPECT_EQ(r["sets"][1]["other_matched"].get<int64_t>(), 3);
  EXPECT_EQ(r["options"]["min_correlation"].get<double>(), data::DedupOptions{}.min_correlation);
  const std::string line = describe_dedup(d.dedup);
  EXPECT_NE(line.find("removed 4 of 80"), std::string::npos) << line;
  EXPECT_NE(line.find("1 held-out and 3 test images"), std::string::npos) << line;
  // Deterministic: a second setup gives the same indices.
  EXPECT_EQ(setup_data(c).train_indices, d.train_indices);

  // A test-data spec with a path but no split suffix means the test split (not the training split again).
  EXPECT_TRUE(data::has_split_suffix("mnist:/x:train"));
  EXPECT_FALSE(data::has_split_suffix("mnist:/x"));
  TrainConfig explicit_test = c;
  explicit_test.test_data = "mnist:" + p.dir;
  const RunData e = setup_data(explicit_test);
  ASSERT_TRUE(e.test_set);
  EXPECT_EQ(e.test_set->size(), kTest);
  EXPECT_EQ(e.dedup.removed, p.copies);

  // Off: nothing removed.
  TrainConfig off = c;
  off.dedup = "off";
  const RunData o = setup_data(off);
  EXPECT_FALSE(o.dedup.applied);
  EXPECT_EQ(o.train_indices, p.split.train);
  // The train_examples subset is drawn from what dedup left.
  TrainConfig sub = c;
  sub.train_examples = 50;
  const RunData s = setup_data(sub);
  EXPECT_EQ(s.train_indices.size(), 50u);
  for (int64_t i : p.copies) EXPECT_FALSE(std::binary_search(s.train_indices.begin(), s.train_indices.end(), i));
}

TEST(DedupRun, RecordedAtTheStartAndAResumedRunTrainsOnTheSameIndices) {
  const Planted p = planted_data("dedup_resume");
  const std::string ref_dir = fresh_dir("dedup_resume_ref"), dir = fresh_dir("dedup_resume_cut");
  TrainConfig ref = dedup_config(p, ref_dir);
  ref.epochs = 1.5;  // 76 examples at batch 16: 8 steps, across an epoch boundary
  const TrainResult full = run_training(ref, false);
  ASSERT_TRUE(full.completed);
  EXPECT_EQ(full.train_examples, kTrain - kHoldout - 4);
  const nlohmann::json rec = nlohmann::json::parse(slurp(ref_dir + "/dedup.json"));
  EXPECT_EQ(rec["removed"].get<std::vector<int64_t>>(), p.copies);

  TrainConfig c = ref;
  c.run_dir = dir;
  EXPECT_TRUE(run_training(c, false, stop_after(3)).interrupted);
  const std::string first_record = slurp(dir + "/dedup.json");
  EXPECT_EQ(nlohmann::json::parse(first_record)["removed"], rec["removed"]);
  const TrainResult last = run_training(c, true);
  ASSERT_TRUE(last.completed);
  EXPECT_EQ(last.train_examples, full.train_examples);
  EXPECT_EQ(slurp(dir + "/dedup.json"), first_record) << "a resumed run must read the record, not rewrite it";
  models::Classifier a = digits_model(), b = digits_model();
  load_weights(ref_dir + "/weights.pt", *a);
  load_weights(dir + "/weights.pt", *b);
  EXPECT_EQ(count_different(*a, *b), 0) << "the resumed run trained on other indices or in another order";

  // Resume reads the record: a recorded list is used as it is (here one copy fewer than a recomputation finds).
  nlohmann::json edited = rec;
  edited["removed"] = std::vector<int64_t>(p.copies.begin() + 1, p.copies.end());
  write_file_atomic(dir + "/edited.json", edited.dump());
  const RunData from_record = setup_data(c, dir + "/edited.json");
  EXPECT_TRUE(from_record.dedup.from_record);
  EXPECT_TRUE(std::binary_search(from_record.train_indices.begin(), from_record.train_indices.end(), p.copies[0]));
  EXPECT_EQ(from_record.train_indices.size(), static_cast<size_t>(kTrain - kHoldout - 3));
  // A record that does not fit the current split is refused, naming the file and the fix.
  edited = rec;
  edited["train_before"] = 81;
  write_file_atomic(dir + "/stale.json", edited.dump());
  try {
    setup_data(c, dir + "/stale.json");
    FAIL() << "a record of other data was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("stale.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("new --run-dir"), std::string::npos) << e.what();
  }
  edited = rec;
  edited["removed"] = std::vector<int64_t>{p.split.holdout[0]};  // not a training index
  write_file_atomic(dir + "/wrong.json", edited.dump());
  EXPECT_THROW(setup_data(c, dir + "/wrong.json"), UserError);

  // A fresh run without dedup in the same directory drops the old record (it would describe other indices).
  TrainConfig off = c;
  off.dedup = "off";
  off.epochs = 0.25;
  ASSERT_TRUE(run_training(off, false).completed);
  EXPECT_FALSE(fs::exists(dir + "/dedup.json"));
}

// The removal is cached on disk by content: another spelling of the same data (which misses the per-process memo)
// reads the cache; a corrupt entry is recomputed and rewritten.
TEST(DedupRun, DiskCacheIsKeyedByContentAndSurvivesACorruptEntry) {
  const Planted p = planted_data("dedup_cache");
  TrainConfig c = dedup_config(p, fresh_dir("dedup_cache_run"));
  c.data += "/.";  // a spelling no other test used (the memo), same content as theirs: empty the cache first
  fs::remove_all(cache_dir() + "/dedup");
  const RunData first = setup_data(c);
  ASSERT_FALSE(first.dedup.cached);
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(cache_dir() + "/dedup")) entries.push_back(e.path());
  ASSERT_EQ(entries.size(), 1u);
  c.data += "/";  // the same directory
  const RunData second = setup_data(c);
  EXPECT_TRUE(second.dedup.cached);
  EXPECT_EQ(second.dedup.removed, p.copies);
  EXPECT_EQ(second.train_indices, first.train_indices);
  EXPECT_NE(describe_dedup(second.dedup).find("cached"), std::string::npos);
  write_file_atomic(entries[0].string(), "{ not json");
  c.data += "/";
  const RunData third = setup_data(c);
  EXPECT_FALSE(third.dedup.cached);
  EXPECT_EQ(third.train_indices, first.train_indices);
  EXPECT_EQ(nlohmann::json::parse(slurp(entries[0].string()))["removed"].get<std::vector<int64_t>>(), p.copies);
  // Other hold-out, other key.
  c.holdout = 10;
  EXPECT_FALSE(setup_data(c).dedup.cached);
}

// The CLI: `nfscale dedup` reports both counts (text, JSON) and writes pair sheets; `nfscale train --dedup on`
// prints one line and records the removal; bad values name the field.
TEST(DedupRun, CliReportsBothCountsAndTrainPrintsOneLine) {
  NFSCALE_REQUIRE_BINARY();
  const Planted p = planted_data("dedup_cli");
  const std::string dir = fresh_dir("dedup_cli_out"), spec = "mnist:" + p.dir;
  CliResult json = run_cli({"dedup", "--data", spec, "--against", spec, "--holdout", "20", "--json"}, dir);  // test split
  ASSERT_EQ(json.code, 0) << json.err;
  const nlohmann::json j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["reports"].size(), 2u);
  EXPECT_EQ(j["reports"][0]["train_dropped"].get<int64_t>(), 1);  // the held-out copy
  EXPECT_EQ(j["reports"][1]["train_dropped"].get<int64_t>(), 3);  // the test copies
  EXPECT_GE(j["reports"][1]["candidates"]["train"].get<int64_t>(), 3);
  CliResult text = run_cli({"dedup", "--data", spec, "--against", spec, "--pairs-png", dir + "/sheet"}, dir);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("hash candidates:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("confirmed by the pixel check: 3 training images dropped"), std::string::npos) << text.out;
  EXPECT_TRUE(fs::exists(dir + "/sheet-against-copies.png"));
  CliResult bad = run_cli({"dedup", "--data", spec, "--against", spec, "--threshold", "40"}, dir);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("threshold (--threshold) = 40"), std::string::npos) << bad.err;
  bad = run_cli({"dedup", "--data", spec, "--against", spec, "--max-mad", "0"}, dir);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--max-mad"), std::string::npos) << bad.err;

  const std::string run = dir + "/run";
  CliResult train = run_cli({"train", "--model", "mini-F0", "--data", spec, "--holdout", "20", "--dedup", "on",
                             "--res", "17", "--batch", "16", "--epochs", "0.2", "--precision", "fp32",
                             "--loader-threads", "1", "--run-dir", run},
                            dir);
  ASSERT_EQ(train.code, 0) << train.err;
  EXPECT_NE(train.err.find("[dedup] removed 4 of 80 training images"), std::string::npos) << train.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(run + "/dedup.json"))["removed"].get<std::vector<int64_t>>(), p.copies);
  bad = run_cli({"train", "--model", "mini-F0", "--data", spec, "--dedup", "yes", "--run-dir", run + "2"}, dir);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("'dedup'"), std::string::npos) << bad.err;
}

TEST(DedupRun, BadSettingNamesTheField) {
  TrainConfig c = small_config(fresh_dir("dedup_bad"));
  c.dedup = "yes";
  try {
    c.validate();
    FAIL() << "dedup = yes accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'dedup'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("off or on"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::train
