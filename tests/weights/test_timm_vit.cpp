// test_timm_vit.cpp - ViT weights in timm's names through the weights area: timm's own vit-tiny-token and
// vit-tiny-gap (shared/fixtures/timm) imported from a spec JSON reproduce timm's logits to 1e-5 (also through
// `nfscale predict`), the name map covers timm's keys exactly, export + re-import is bit-identical, `nfscale export`
// of a ViT run is read back by Python (tests/weights/read_back.py) with timm's names and shapes, a position
// embedding of another grid is resampled on import, and timm's fc_norm head is refused with the tensors named.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <set>

#include "nfscale/models/registry.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"
#include "nfscale/weights/model_source.h"
#include "nfscale/weights/safetensors.h"
#include "weights_test_util.h"

namespace nfscale::weights {
namespace {
using namespace testing;

class TimmVit : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = timm_fixture(GetParam());
    if (dir_.empty()) GTEST_SKIP() << "shared/fixtures/timm/" << GetParam() << " not found beside the source tree";
    tmp_ = fresh_dir(std::string("vit_") + GetParam());
    weights_ = read_weights(dir_ + "/weights.safetensors");
    SafetensorsFile io(dir_ + "/io.safetensors");
    input_ = io.tensor("input").clone();
    logits_ = io.tensor("logits").clone();
    model_json_ = nlohmann::json::parse(slurp(dir_ + "/model.json"));
    // The fixture's timm configuration (model.json) as an nfscale spec; the GELU form is left to the convention.
    const nlohmann::json spec = {{"family", "vit"},
                                 {"name", std::string("timm-") + GetParam()},
                                 {"patch", model_json_["patch_size"]},
                                 {"width", model_json_["embed_dim"]},
                                 {"depth", model_json_["depth"]},
                                 {"mlp_dim", model_json_["embed_dim"].get<int64_t>() * 4},
                                 {"heads", model_json_["num_heads"]},
                                 {"pool", model_json_["global_pool"] == "avg" ? "gap" : "token"},
                                 {"ln_eps", model_json_["ln_eps"]},
                                 {"train_res", model_json_["img_size"]},
                                 {"test_res", model_json_["img_size"]}};
    spec_path_ = tmp_ + "/spec.json";
    spit(spec_path_, spec.dump());
  }
  BuiltModel import_fixture(ModelSource src = {}) {
    src.model_json = spec_path_;
    BuiltModel b = build_for_weights(weights_, src, "weights.safetensors");
    import_weights(*b.model, weights_, {}, "weights.safetensors");
    b.model->eval();
    return b;
  }
  double error_to_timm(models::ClassifierImpl& model) {
    torch::NoGradGuard ng;
    return (model.forward(input_) - logits_).abs().max().item<double>();  // [4, 10]
  }
  std::string dir_, tmp_, spec_path_;
  WeightSet weights_;
  torch::Tensor input_, logits_;
  nlohmann::json model_json_;
};

TEST_P(TimmVit, ImportReproducesTimmLogits) {
  BuiltModel b = import_fixture();
  EXPECT_EQ(b.convention, "timm");  // nfscale did not write the file: timm's names and GELU
  EXPECT_EQ(b.config.activation, "gelu_erf");
  EXPECT_EQ(b.config.num_classes, model_json_["num_classes"].get<int64_t>());
  EXPECT_EQ(b.config.in_channels, model_json_["in_chans"].get<int64_t>());
  EXPECT_EQ(models::count_cost(*b.model, 32, 1).params, model_json_["params"].get<int64_t>());
  EXPECT_LT(error_to_timm(*b.model), 1e-5) << "max abs difference to timm's logits";
  // The tanh GELU (big_vision's, the spec's default under nfscale's names) is further from timm (in this tiny model
  // by only ~1e-6..1e-5: the GELU forms differ by < 1e-3 and the head is small).
  ModelSource tanh;
  tanh.names = "nfscale";
  BuiltModel t = import_fixture(tanh);
  EXPECT_EQ(t.config.activation, "gelu");
  EXPECT_GT(error_to_timm(*t.model), 2 * error_to_timm(*b.model));
}

TEST_P(TimmVit, NameMapCoversTimmKeysExactly) {
  BuiltModel b = import_fixture();
  std::set<std::string> ours, timm;
  for (const auto& m : name_map("vit", "timm").map(*b.model)) {
    EXPECT_TRUE(ours.insert(m.external).second) << m.external;
    EXPECT_EQ(m.external_shape, model_json_["keys"][m.external].get<std::vector<int64_t>>()) << m.external;
  }
  for (const auto& kv : model_json_["keys"].items()) timm.insert(kv.key());
  EXPECT_EQ(ours, timm);
  EXPECT_EQ(family_of(*b.model), "vit");
}

TEST_P(TimmVit, ExportReimportIsBitIdentical) {
  BuiltModel b = import_fixture();
  for (const char* names : {"timm", "nfscale"}) {
    const std::string path = tmp_ + "/" + names + ".safetensors";
    weight_format("safetensors").write(path, export_weights(*b.model, names, model_metadata(*b.model, b.config, names)));
    const WeightSet back = read_weights(path);
    BuiltModel c = build_for_weights(back, {}, path);  // the architecture from the exported metadata (spec JSON)
    EXPECT_EQ(c.convention, names);
    EXPECT_EQ(c.config.name, b.config.name);
    EXPECT_EQ(c.config.activation, "gelu_erf");
    import_weights(*c.model, back, {}, path);
    auto pa = b.model->named_parameters(true), pb = c.model->named_parameters(true);
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(same_bits(pa[i].value(), pb[i].value())) << pa[i].key();
    c.model->eval();
    EXPECT_LT(error_to_timm(*c.model), 1e-5);
  }
  // The timm export holds timm's own tensors, name by name and bit by bit.
  const WeightSet ours = read_weights(tmp_ + "/timm.safetensors");
  ASSERT_EQ(ours.tensors.size(), weights_.tensors.size());
  for (const auto& t : weights_.tensors) {
    const auto mine = ours.find(t.name);
    ASSERT_TRUE(mine.defined()) << t.name;
    EXPECT_TRUE(same_bits(mine, t.tensor)) << t.name;
  }
}

TEST_P(TimmVit, ExportedRunIsReadBackByPython) {
  // A run dir as `nfscale train` leaves it (the spec JSON as its model, nfscale names in weights.pt), exported by the
  // binary in timm's names; Python with Debian's python3-torch reads it with a hand-parsed header.
  BuiltModel b = import_fixture();
  const std::string run = tmp_ + "/run";
  fs::create_directories(run);
  spit(run + "/config.json", nlohmann::json{{"model", b.config.name},
                                            {"data", "digits"},
                                            {"activation", "gelu_erf"},
                                            {"resolution", model_json_["img_size"]}}
                                 .dump());
  weight_format("torch").write(run + "/weights.pt", export_weights(*b.model, "nfscale", {}));
  const std::string out = tmp_ + "/export.safetensors";
  auto r = run_command(nfscale_bin() + " export --run-dir " + run + " --format safetensors --names timm --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = python_read_back(out, dir_);
  ASSERT_EQ(r.exit_code, 0) << "python3 with torch (Debian python3-torch, scripts/setup.sh) failed:\n" << r.output;
  EXPECT_NE(r.output.find("python-ok " + std::to_string(model_json_["keys"].size())), std::string::npos) << r.output;
  // The exported file alone (its metadata names the spec, the grid and the GELU) reproduces timm's logits.
  r = run_command(nfscale_bin() + " predict --from " + out + " --tensor " + dir_ + "/io.safetensors --out " + tmp_ +
                  "/e.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT((SafetensorsFile(tmp_ + "/e.safetensors").tensor("logits") - logits_).abs().max().item<double>(), 1e-5);
}

TEST_P(TimmVit, PositionEmbeddingOfAnotherGridIsResampledOnImport) {
  // A model built for 16 px (4x4 patches) takes the 8x8 embedding, resampled bicubically as the 32 px model resamples
  // it on the fly at 16 px: the two agree on a 16 px input.
  BuiltModel at32 = import_fixture();
  ModelSource small;
  small.resolution = 16;
  small.model_json = spec_path_;
  BuiltModel at16 = build_for_weights(weights_, small, "weights.safetensors");
  const ImportReport r = import_weights(*at16.model, weights_, {}, "weights.safetensors");
  EXPECT_EQ(r.loaded, static_cast<int64_t>(weights_.tensors.size()));
  const int64_t prefix = model_json_["global_pool"] == "avg" ? 0 : 1;
  EXPECT_EQ(at16.model->named_parameters()["pos_embed"].size(1), prefix + 16);
  at16.model->eval();
  torch::NoGradGuard ng;
  const auto x = input_.narrow(2, 0, 16).narrow(3, 0, 16).contiguous();  // [4, 1, 16, 16]
  EXPECT_LT((at16.model->forward(x) - at32.model->forward(x)).abs().max().item<double>(), 1e-5);
}

TEST_P(TimmVit, TimmFcNormHeadIsRefusedNamingTheTensors) {
  // timm's default for global_pool='avg' normalises after pooling (fc_norm): not nfscale's gap head.
  WeightSet fc = weights_;
  for (auto& t : fc.tensors)
    if (t.name.rfind("norm.", 0) == 0) t.name = "fc_" + t.name;
  BuiltModel b = import_fixture();
  const std::string msg = error_of([&] { import_weights(*b.model, fc, {}, "fc_norm.safetensors"); });
  EXPECT_NE(msg.find("fc_norm.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing (2): norm."), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected (2): fc_norm."), std::string::npos) << msg;
}

TEST_P(TimmVit, PredictThroughTheBinaryReproducesTimmLogits) {
  const std::string out = tmp_ + "/p.safetensors";
  const auto r = run_command(nfscale_bin() + " predict --from " + dir_ + "/weights.safetensors --model-json " +
                             spec_path_ + " --tensor " + dir_ + "/io.safetensors:input --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT((SafetensorsFile(out).tensor("logits") - logits_).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TimmVit, ::testing::Values("vit-tiny-token", "vit-tiny-gap"),
                         [](const auto& info) { return std::string(info.param).substr(9); });

TEST(VitNameMap, RefusesAnNfnetAndNamesTheHead) {
  models::ModelConfig mc;
  mc.name = "mini-F0";
  mc.init_weights = false;
  auto model = models::build_model(mc);
  EXPECT_THROW(name_map("vit", "timm").map(*model), std::logic_error);
  EXPECT_EQ(name_map("vit", "timm").classifier_prefix(), "head.");
  EXPECT_EQ(name_conventions("vit"), (std::vector<std::string>{"nfscale", "timm"}));
}

}  // namespace
}  // namespace nfscale::weights
