// test_evaluate.cpp - evaluate() against hand-computed numbers: a classifier with fixed logits (fixed ranking of
// the classes) on the digits test split and on a generated 3-class dataset.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "nfscale/data/dataset.h"
#include "nfscale/models/classifier.h"
#include "nfscale/train/evaluate.h"

namespace nfscale::train {
namespace {

// Ignores its input and returns the same logits row for every example: x [B,C,H,W] -> [B,K].
class FixedLogits : public models::ClassifierImpl {
 public:
  explicit FixedLogits(std::vector<double> logits) : row_(torch::tensor(logits, torch::kFloat32)) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    return row_.unsqueeze(0).expand({x.size(0), row_.size(0)}).clone();  // [B,K]
  }
  void reset_classifier(int64_t) override {}
  void set_regularization(double, double) override {}
  std::vector<models::ParamInfo> param_info() override { return {}; }
  std::string name() const override { return "fixed"; }
  int64_t num_classes() const override { return row_.size(0); }
  int64_t in_channels() const override { return 1; }

 private:
  torch::Tensor row_;  // [K]
};

// -log softmax(row)[label], in double.
double nll(const std::vector<double>& row, int64_t label) {
  double lse = 0.0;
  for (double z : row) lse += std::exp(z);
  return std::log(lse) - row[static_cast<size_t>(label)];
}

// A generated dataset: n grey 4x4 images, label i % classes (pattern 0,1,2,0,1,2,...) unless `labels` is given.
class TinyDataset : public data::Dataset {
 public:
  explicit TinyDataset(std::vector<int64_t> labels, int64_t classes) : labels_(std::move(labels)), k_(classes) {}
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  data::RawExample load(int64_t i) const override {
    data::RawExample e;
    e.image = data::Image(1, 4, 4, static_cast<uint8_t>(i * 13 % 256));
    e.label = labels_[static_cast<size_t>(i)];
    return e;
  }
  int64_t label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  int64_t num_classes() const override { return k_; }
  int64_t channels() const override { return 1; }
  std::string describe() const override { return "tiny"; }

 private:
  std::vector<int64_t> labels_;
  int64_t k_;
};

EvalOptions options(int64_t res) {
  EvalOptions o;
  o.resolution = res;
  o.batch = 37;  // not a divisor of the set sizes: the short last batch must count correctly
  o.threads = 1;
  o.channels = 1;
  return o;
}

TEST(Evaluate, FixedPredictionOnDigitsMatchesHandCountedErrors) {
  data::DataSpec spec;
  spec.kind = "digits";
  spec.split = "test";
  auto test = data::open_dataset(spec);
  ASSERT_EQ(test->num_classes(), 10);
  // Ranking of the logits: 3 > 7 > 0 > 5 > 9 > the rest. Top-1 predicts 3; top-5 = {3, 7, 0, 5, 9}.
  std::vector<double> row{2.0, -1.0, -1.5, 4.0, -2.0, 1.0, -0.5, 3.0, -3.0, 0.5};
  auto model = std::make_shared<FixedLogits>(row);
  // Every other test example, so the index list (not just the dataset) is honoured.
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < test->size(); i += 2) idx.push_back(i);

  int64_t top1_hits = 0, top5_hits = 0;
  double loss = 0.0;
  const std::set<int64_t> top5{3, 7, 0, 5, 9};
  for (int64_t i : idx) {
    const int64_t y = test->label(i);
    top1_hits += y == 3;
    top5_hits += top5.count(y);
    loss += nll(row, y);
  }
  const double n = double(idx.size());
  const EvalResult r = evaluate(*model, test, idx, options(8));
  EXPECT_EQ(r.examples, static_cast<int64_t>(idx.size()));
  EXPECT_NEAR(r.top1_err, 1.0 - top1_hits / n, 1e-12);
  EXPECT_NEAR(r.top5_err, 1.0 - top5_hits / n, 1e-12);
  EXPECT_NEAR(r.loss, loss / n, 1e-5);
  // Sanity of the fixture: digits is roughly balanced, so both errors are far from 0 and 1.
  EXPECT_GT(r.top1_err, 0.8);
  EXPECT_GT(r.top5_err, 0.3);
  EXPECT_LT(r.top5_err, 0.7);
}

TEST(Evaluate, TopFiveErrorIsZeroWithThreeClasses) {
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < 100; ++i) labels.push_back(i % 7 == 0 ? 2 : i % 3 == 0 ? 1 : 0);
  auto ds = std::make_shared<TinyDataset>(labels, 3);
  std::vector<double> row{0.1, 1.5, -0.3};  // predicts class 1
  auto model = std::make_shared<FixedLogits>(row);
  std::vector<int64_t> idx(100);
  for (int64_t i = 0; i < 100; ++i) idx[static_cast<size_t>(i)] = i;
  int64_t ones = 0;
  double loss = 0.0;
  for (int64_t y : labels) ones += y == 1, loss += nll(row, y);
  const EvalResult r = evaluate(*model, ds, idx, options(4));
  EXPECT_EQ(r.examples, 100);
  EXPECT_NEAR(r.top1_err, 1.0 - ones / 100.0, 1e-12);
  EXPECT_EQ(r.top5_err, 0.0);
  EXPECT_NEAR(r.loss, loss / 100.0, 1e-5);
}

TEST(Evaluate, RestoresTrainingMode) {
  auto model = std::make_shared<FixedLogits>(std::vector<double>{0.0, 1.0});
  auto ds = std::make_shared<TinyDataset>(std::vector<int64_t>{0, 1, 1}, 2);
  model->train();
  evaluate(*model, ds, {0, 1, 2}, options(4));
  EXPECT_TRUE(model->is_training());
  model->eval();
  evaluate(*model, ds, {0, 1, 2}, options(4));
  EXPECT_FALSE(model->is_training());
}

}  // namespace
}  // namespace nfscale::train
