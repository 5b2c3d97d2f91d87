// test_timm_import.cpp - NFNet weights in timm's names: importing timm's own nfnet-mini-f0 (shared/fixtures/timm)
// reproduces timm's logits, export + re-import is bit-identical, and bad files give one error listing every problem.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <set>

#include "nfscale/models/layers.h"
#include "nfscale/models/registry.h"
#include "nfscale/util/error.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"
#include "nfscale/weights/model_source.h"
#include "nfscale/weights/safetensors.h"
#include "weights_test_util.h"

namespace nfscale::weights {
namespace {
using namespace testing;

class TimmNfnet : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = timm_fixture("nfnet-mini-f0");
    if (dir_.empty()) GTEST_SKIP() << "shared/fixtures/timm/nfnet-mini-f0 not found beside the source tree";
    weights_ = read_weights(dir_ + "/weights.safetensors");
    SafetensorsFile io(dir_ + "/io.safetensors");
    input_ = io.tensor("input").clone();
    logits_ = io.tensor("logits").clone();
  }
  BuiltModel import_fixture(const ModelSource& src = {}) {
    BuiltModel b = build_for_weights(weights_, src, "weights.safetensors");
    import_weights(*b.model, weights_, {}, "weights.safetensors");
    b.model->eval();
    return b;
  }
  std::string dir_;
  WeightSet weights_;
  torch::Tensor input_, logits_;
};

TEST_F(TimmNfnet, ImportReproducesTimmLogits) {
  BuiltModel b = import_fixture();  // architecture from the file's metadata (nfscale_model = mini-F0)
  EXPECT_EQ(b.config.name, "mini-F0");
  EXPECT_EQ(b.convention, "timm");
  EXPECT_EQ(b.config.ws_form, "timm");
  EXPECT_EQ(b.config.activation, "gelu_erf");
  EXPECT_EQ(b.config.num_classes, 10);
  EXPECT_EQ(b.config.in_channels, 1);
  torch::NoGradGuard ng;
  const auto out = b.model->forward(input_);  // [4, 10]
  const double err = (out - logits_).abs().max().item<double>();
  EXPECT_LT(err, 1e-5) << "max abs difference to timm's logits";
}

TEST_F(TimmNfnet, DeepMindFormDoesNotReproduceTimm) {
  // The WS form matters: the same weights under the DeepMind form miss timm's logits by far more than 1e-5.
  ModelSource src;
  src.ws_form = "deepmind";
  BuiltModel b = import_fixture(src);
  torch::NoGradGuard ng;
  EXPECT_GT((b.model->forward(input_) - logits_).abs().max().item<double>(), 1e-4);
}

TEST_F(TimmNfnet, ExportReimportIsBitIdentical) {
  BuiltModel b = import_fixture();
  const std::string tmp = fresh_dir("reexport");
  for (const char* names : {"timm", "nfscale"}) {
    const std::string path = tmp + "/" + names + ".safetensors";
    weight_format("safetensors").write(path, export_weights(*b.model, names, model_metadata(*b.model, b.config, names)));
    const WeightSet back = read_weights(path);
    BuiltModel c = build_for_weights(back, {}, path);  // everything from the exported metadata
    EXPECT_EQ(c.convention, names);
    EXPECT_EQ(c.config.ws_form, "timm");
    import_weights(*c.model, back, {}, path);
    auto pa = b.model->named_parameters(true), pb = c.model->named_parameters(true);
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(same_bits(pa[i].value(), pb[i].value())) << pa[i].key();
  }
  // timm names, shapes and values of the export equal timm's own file, tensor by tensor.
  const WeightSet ours = read_weights(tmp + "/timm.safetensors");
  ASSERT_EQ(ours.tensors.size(), weights_.tensors.size());
  for (const auto& t : weights_.tensors) {
    const auto mine = ours.find(t.name);
    ASSERT_TRUE(mine.defined()) << t.name;
    EXPECT_EQ(mine.sizes(), t.tensor.sizes()) << t.name;
    EXPECT_TRUE(same_bits(mine, t.tensor)) << t.name;
  }
}

TEST_F(TimmNfnet, BadFilesGiveOneErrorListingEveryProblem) {
  WeightSet bad = weights_;
  bad.tensors.erase(bad.tensors.begin() + 3);                                   // stem.conv2.weight missing
  bad.tensors.push_back({"stages.9.0.conv1.weight", torch::zeros({1})});        // unexpected
  for (auto& t : bad.tensors)
    if (t.name == "final_conv.bias") t.tensor = torch::zeros({7});              // mis-shaped
  BuiltModel b = build_for_weights(weights_, {}, "w");
  const auto msg = error_of([&] { import_weights(*b.model, bad, {}, "bad.safetensors"); });
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing (1): stem.conv2.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected (1): stages.9.0.conv1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mis-shaped (1): final_conv.bias (file [7], model [384])"), std::string::npos) << msg;
  // A different architecture: a wall of mismatches, still one error naming the model.
  ModelSource other;
  other.model = "mini-F1";
  const auto msg2 = error_of([&] { import_fixture(other); });
  EXPECT_NE(msg2.find("does not fit model mini-F1"), std::string::npos) << msg2;
}

TEST_F(TimmNfnet, NonStrictReplacesAClassifierOfAnotherSize) {
  models::ModelConfig mc;
  mc.name = "mini-F0";
  mc.num_classes = 5;
  mc.in_channels = 1;
  mc.ws_form = "timm";
  mc.activation = "gelu_erf";
  auto model = models::build_model(mc);
  const auto head_before = model->named_parameters()["fc.weight"].clone();
  EXPECT_NE(error_of([&] { import_weights(*model, weights_, {}, "w"); }).find("turn --strict off"), std::string::npos);
  ImportOptions lax;
  lax.strict = false;
  const ImportReport r = import_weights(*model, weights_, lax, "w");
  EXPECT_EQ(r.kept, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_TRUE(same_bits(model->named_parameters()["fc.weight"], head_before));
  EXPECT_TRUE(same_bits(model->named_parameters()["final_conv.weight"], weights_.find("final_conv.weight")));
  // Non-strict still refuses a body that does not fit.
  WeightSet bad = weights_;
  bad.tensors.erase(bad.tensors.begin());
  EXPECT_NE(error_of([&] { import_weights(*model, bad, lax, "w"); }).find("missing (1): stem.conv1.weight"),
            std::string::npos);
}

TEST(WsForm, TimmFormMatchesBatchNormInDouble) {
  // timm computes F.batch_norm(w.reshape(1, O, -1), training=True, weight=gain*fan_in^-0.5, eps=1e-5).
  torch::manual_seed(1);
  auto w = torch::randn({6, 4, 3, 3}, torch::kDouble);
  auto gain = torch::rand({6}, torch::kDouble) + 0.5;
  const double fan_in = 4 * 9;
  auto ref = torch::batch_norm(w.reshape({1, 6, -1}), gain * std::pow(fan_in, -0.5), {}, {}, {}, true, 0.0, 1e-5, false)
                 .reshape_as(w);
  EXPECT_LT((models::standardize_weight_timm(w, gain) - ref).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(models::parse_ws_form("timm"), models::WsForm::kTimm);
  EXPECT_NE(error_of([] { models::parse_ws_form("tim", "--ws-form"); }).find("valid choices: deepmind"),
            std::string::npos);
}

TEST(NameMap, TimmNamesCoverEveryNfnetTensorOnce) {
  models::ModelConfig mc;
  mc.name = "F0";
  mc.init_weights = false;
  auto model = models::build_model(mc);
  const auto mapped = name_map("nfnet", "timm").map(*model);
  std::set<std::string> names;
  for (const auto& m : mapped) EXPECT_TRUE(names.insert(m.external).second) << m.external;
  EXPECT_EQ(mapped.size(), model->named_parameters().size());
  // F0 has stage depths 1,2,6,3: the last block is stages.3.2.
  EXPECT_TRUE(names.count("stages.3.2.conv2b.weight"));
  EXPECT_TRUE(names.count("stages.2.5.skipinit_gain"));
  EXPECT_TRUE(names.count("stages.1.0.downsample.conv.gain"));
  EXPECT_FALSE(names.count("stages.1.1.downsample.conv.gain"));
  EXPECT_TRUE(names.count("head.fc.weight"));
  EXPECT_NE(error_of([] { name_map("nfnet", "keras"); }).find("valid choices: nfscale, timm"), std::string::npos);
}

}  // namespace
}  // namespace nfscale::weights
