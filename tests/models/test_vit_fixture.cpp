// test_vit_fixture.cpp - a ViT of the shapes of the timm fixtures (../shared/fixtures/timm/vit-tiny-{token,gap}:
// timm VisionTransformer, 32 px, patch 4, 1 channel, width 64, depth 2, 4 heads, erf GELU) given as a JSON spec,
// loaded with timm's weights by name, reproduces timm's stored logits to 1e-5. Until the weights/ area (branch intr)
// is merged, the fixture is read by the minimal reader in safetensors_min.h.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "nfscale/models/family.h"
#include "nfscale/models/registry.h"
#include "safetensors_min.h"

namespace nfscale::models {
namespace {

const std::string kFixtures = std::string(NFSCALE_SOURCE_DIR) + "/../shared/fixtures/timm/";

void check_fixture(const std::string& folder, const std::string& pool) {
  const std::string dir = kFixtures + folder;
  if (!std::filesystem::exists(dir + "/weights.safetensors")) GTEST_SKIP() << dir << " is not present";
  const nlohmann::json spec = {{"family", "vit"}, {"patch", 4},        {"width", 64},     {"depth", 2},
                               {"mlp_dim", 256},  {"heads", 4},        {"pool", pool},    {"posemb", "learn"},
                               {"gelu", "erf"},   {"ln_eps", 1e-6},    {"train_res", 32}, {"test_res", 32}};
  ModelConfig mc;
  mc.name = spec.dump();
  mc.num_classes = 10;
  mc.in_channels = 1;
  mc.init_weights = false;
  Classifier model = build_model(mc);
  const ModelFamily& family = family_of(mc.name);
  const auto w = testing::read_f32_safetensors(dir + "/weights.safetensors");
  int64_t loaded = 0, params = 0;
  {
    torch::NoGradGuard ng;
    for (auto& item : model->named_parameters(true)) {
      const std::string timm_name = family.external_weight_name(item.key());
      ASSERT_TRUE(w.count(timm_name)) << timm_name;
      torch::Tensor t = w.at(timm_name);
      ASSERT_EQ(t.sizes(), item.value().sizes()) << timm_name;
      item.value().copy_(t);
      ++loaded;
      params += t.numel();
    }
  }
  EXPECT_EQ(loaded, static_cast<int64_t>(w.size())) << "every timm tensor has a counterpart";
  const auto meta = nlohmann::json::parse(std::ifstream(dir + "/model.json"));
  EXPECT_EQ(params, meta["params"].get<int64_t>());
  const auto io = testing::read_f32_safetensors(dir + "/io.safetensors");
  model->eval();
  torch::NoGradGuard ng;
  const torch::Tensor logits = model->forward(io.at("input"));  // [4, 10]
  const torch::Tensor expect = io.at("logits");
  EXPECT_LT((logits - expect).abs().max().item<double>(), 1e-5) << logits << "\nvs timm\n" << expect;
}

TEST(ViTFixture, TimmClassTokenViTReproducesTheStoredLogits) { check_fixture("vit-tiny-token", "token"); }
TEST(ViTFixture, TimmGapViTReproducesTheStoredLogits) { check_fixture("vit-tiny-gap", "gap"); }

}  // namespace
}  // namespace nfscale::models
