// test_vit.cpp - the ViT family: parameter and MAC counts against the published checks and the reference formula,
// the mini-ViT ladder's FLOP span against the mini NFNet ladder, attention against a naive fp64 formula (values and
// finite-difference gradients), 2-D position-embedding resampling, the JSON spec round trip and bad specs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "nfscale/models/registry.h"
#include "nfscale/models/vit/vit.h"
#include "nfscale/models/vit/vit_family.h"
#include "nfscale/util/error.h"

namespace nfscale::models {
namespace {

// Reference MACs per image (docs/models.md): N*P^2*C*D + L*(4*T*D^2 + 2*T*D*M + 2*T^2*D) + D*K.
int64_t formula_macs(const ViTSpec& s, int64_t res, int64_t C, int64_t K) {
  const int64_t g = res / s.patch, N = g * g, T = N + (s.pool == "token" ? 1 : 0), D = s.width, M = s.mlp_dim;
  return N * s.patch * s.patch * C * D + s.depth * (4 * T * D * D + 2 * T * D * M + 2 * T * T * D) + D * K;
}

TEST(ViT, CountsMatchThePublishedChecksAndTheFormula) {
  struct Row {
    const char* name;
    double params_m, gmacs;
  } rows[] = {{"ViT-Ti-16", 5.72, 1.26}, {"ViT-S-16", 22.05, 4.61}, {"ViT-B-16", 86.57, 17.58}};
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    const ModelCost c = count_cost(r.name, 224, 3, 1000);
    EXPECT_NEAR(c.params / 1e6, r.params_m, 0.005);  // published to 0.01M
    EXPECT_EQ(c.macs_per_image, formula_macs(vit_spec(r.name), 224, 3, 1000));
    // The published GMACs also count LayerNorm, softmax and GELU (< 1%, reference.md); the counted model leaves them
    // out like the NFNet convention, so it is below them by less than 0.6%.
    EXPECT_LE(c.macs_per_image / 1e9, r.gmacs);
    EXPECT_GT(c.macs_per_image / 1e9, r.gmacs * 0.994);
  }
  // Patch 14 and a gap head: 256 tokens, no class token, still the formula.
  EXPECT_EQ(count_cost("ViT-S-14", 224, 3, 1000).macs_per_image, formula_macs(vit_spec("ViT-S-14"), 224, 3, 1000));
  EXPECT_EQ(count_cost("mini-ViT-S", 32, 1, 10).macs_per_image, formula_macs(vit_spec("mini-ViT-S"), 32, 1, 10));
}

TEST(ViT, MiniLadderSpansTheMiniNFNetLadderWithinOnePointFiveAtEachEnd) {
  auto span = [](const std::string& prefix, const std::string& family) {
    double lo = 1e300, hi = 0;
    for (const auto& n : model_names()) {
      if (n.rfind(prefix, 0) != 0 || family_of(n).name() != family) continue;
      const ModelInfo i = model_info(n);
      const double f = double(count_cost(n, 32, i.ref_in_channels, i.ref_num_classes).train_flops_per_image());
      lo = std::min(lo, f);
      hi = std::max(hi, f);
    }
    return std::make_pair(lo, hi);
  };
  const auto nf = span("mini-", "nfnet"), vit = span("mini-ViT", "vit");
  EXPECT_LT(std::max(vit.first, nf.first) / std::min(vit.first, nf.first), 1.5) << vit.first << " vs " << nf.first;
  EXPECT_LT(std::max(vit.second, nf.second) / std::min(vit.second, nf.second), 1.5) << vit.second << " vs " << nf.second;
}

// Naive multi-head attention in fp64 with explicit loops: x [B,T,D], Wqkv [3D,D], bqkv [3D], Wo [D,D], bo [D].
torch::Tensor naive_attention(const torch::Tensor& x, const torch::Tensor& wqkv, const torch::Tensor& bqkv,
                              const torch::Tensor& wo, const torch::Tensor& bo, int64_t H) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), hd = D / H;
  auto X = x.accessor<double, 3>();
  auto W = wqkv.accessor<double, 2>();
  auto b = bqkv.accessor<double, 1>();
  std::vector<double> qkv(static_cast<size_t>(B * T * 3 * D));
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < 3 * D; ++o) {
        double s = b[o];
        for (int64_t k = 0; k < D; ++k) s += W[o][k] * X[i][t][k];
        qkv[static_cast<size_t>((i * T + t) * 3 * D + o)] = s;
      }
  auto at = [&](int64_t i, int64_t t, int64_t which, int64_t h, int64_t c) {
    return qkv[static_cast<size_t>((i * T + t) * 3 * D + which * D + h * hd + c)];
  };
  auto heads = torch::zeros({B, T, D}, torch::kDouble);
  auto O = heads.accessor<double, 3>();
  for (int64_t i = 0; i < B; ++i)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> s(static_cast<size_t>(T));
        double mx = -1e300;
        for (int64_t u = 0; u < T; ++u) {
          double d = 0;
          for (int64_t c = 0; c < hd; ++c) d += at(i, t, 0, h, c) * at(i, u, 1, h, c);
          s[static_cast<size_t>(u)] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[static_cast<size_t>(u)]);
        }
        double z = 0;
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (int64_t c = 0; c < hd; ++c) {
          double acc = 0;
          for (int64_t u = 0; u < T; ++u) acc += s[static_cast<size_t>(u)] / z * at(i, u, 2, h, c);
          O[i][t][h * hd + c] = acc;
        }
      }
  return torch::matmul(heads, wo.t()) + bo;  // the output projection (checked above by the qkv loop pattern)
}

TEST(ViT, AttentionMatchesANaiveFp64FormulaWithGradients) {
  torch::manual_seed(3);
  Attention attn(8, 2);
  attn->to(torch::kDouble);
  auto x = torch::randn({2, 5, 8}, torch::kDouble).requires_grad_(true);
  auto y = attn->forward(x);
  auto ref = naive_attention(x.detach(), attn->qkv->weight.detach(), attn->qkv->bias.detach(),
                             attn->proj->weight.detach(), attn->proj->bias.detach(), 2);
  EXPECT_LT((y - ref).abs().max().item<double>(), 1e-12);
  // Gradients of L = sum(y * r) against central finite differences of the naive formula.
  auto r = torch::randn({2, 5, 8}, torch::kDouble);
  (y * r).sum().backward();
  auto loss_at = [&](const torch::Tensor& xx, const torch::Tensor& wqkv) {
    return (naive_attention(xx, wqkv, attn->qkv->bias.detach(), attn->proj->weight.detach(),
                            attn->proj->bias.detach(), 2) * r).sum().item<double>();
  };
  const double h = 1e-6;
  for (int64_t k : {0, 7, 19, 33, 79}) {
    auto xp = x.detach().clone(), xm = x.detach().clone();
    xp.view(-1)[k] += h;
    xm.view(-1)[k] -= h;
    const double fd = (loss_at(xp, attn->qkv->weight.detach()) - loss_at(xm, attn->qkv->weight.detach())) / (2 * h);
    EXPECT_NEAR(x.grad().view(-1)[k].item<double>(), fd, 1e-7) << "x[" << k << "]";
  }
  for (int64_t k : {0, 10, 70, 130, 191}) {  // q, k and v rows of the fused projection
    auto wp = attn->qkv->weight.detach().clone(), wm = wp.clone();
    wp.view(-1)[k] += h;
    wm.view(-1)[k] -= h;
    const double fd = (loss_at(x.detach(), wp) - loss_at(x.detach(), wm)) / (2 * h);
    EXPECT_NEAR(attn->qkv->weight.grad().view(-1)[k].item<double>(), fd, 1e-7) << "w[" << k << "]";
  }
}

TEST(ViT, PositionEmbeddingResamplingKeepsTheClassTokenAndInterpolatesIn2D) {
  const int64_t D = 3;
  auto pos = torch::randn({1, 1 + 4, D}, torch::kDouble);  // class token + 2x2 grid
  EXPECT_TRUE(torch::equal(resample_pos_embed(pos, 1, 2, 2, 2, 2, "bicubic"), pos));  // same grid: unchanged
  auto up = resample_pos_embed(pos, 1, 2, 2, 4, 4, "bilinear");
  ASSERT_EQ(up.sizes(), (std::vector<int64_t>{1, 17, D}));
  EXPECT_TRUE(torch::equal(up.narrow(1, 0, 1), pos.narrow(1, 0, 1)));  // class token kept bit for bit
  // align_corners=false: output pixel i samples source (i + 0.5) * 2/4 - 0.5, clamped to [0, 1].
  auto src = [&](int64_t r, int64_t c) { return pos[0][1 + r * 2 + c]; };
  auto coord = [](int64_t i) { return std::clamp((i + 0.5) * 0.5 - 0.5, 0.0, 1.0); };
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 4; ++c) {
      const double fy = coord(r), fx = coord(c);
      auto expect = src(0, 0) * (1 - fy) * (1 - fx) + src(0, 1) * (1 - fy) * fx + src(1, 0) * fy * (1 - fx) +
                    src(1, 1) * fy * fx;
      EXPECT_LT((up[0][1 + r * 4 + c] - expect).abs().max().item<double>(), 1e-12) << r << "," << c;
    }
  // Row-major grid: a vertical gradient stays vertical after bicubic resampling (rows and columns not swapped).
  auto ramp = torch::zeros({1, 4, 1}, torch::kDouble);
  ramp[0][2][0] = 1;
  ramp[0][3][0] = 1;  // bottom row 1, top row 0
  auto rs = resample_pos_embed(ramp, 0, 2, 2, 3, 3, "bicubic").view({3, 3});
  EXPECT_LT((rs.select(1, 0) - rs.select(1, 2)).abs().max().item<double>(), 1e-12);
  EXPECT_LT(rs[0][0].item<double>(), rs[2][0].item<double>());
  EXPECT_THROW(resample_pos_embed(pos, 1, 2, 2, 4, 4, "nearest"), UserError);
}

TEST(ViT, ModelRunsAtOtherResolutionsAndLoadsAPositionEmbeddingOfAnotherGrid) {
  ModelConfig mc;
  mc.name = "mini-ViT-Ti";
  mc.num_classes = 10;
  mc.in_channels = 1;
  mc.resolution = 32;
  torch::manual_seed(0);
  auto m = std::dynamic_pointer_cast<ViTImpl>(build_model(mc));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->pos_embed.size(1), 64);  // gap head: no class token, 8x8 grid
  m->eval();
  EXPECT_EQ(m->forward(torch::randn({2, 1, 48, 48})).sizes(), (std::vector<int64_t>{2, 10}));
  auto stored = torch::randn({1, 16, m->spec().width});  // a 4x4 grid pre-trained at 16 px
  auto fitted = m->adapt_loaded("pos_embed", stored);
  EXPECT_EQ(fitted.sizes(), m->pos_embed.sizes());
  EXPECT_TRUE(torch::equal(m->adapt_loaded("blocks.0.norm1.weight", stored), stored));  // other names untouched
}

TEST(ViT, JsonSpecRoundTripsAndBuildsWithoutARegistryName) {
  ViTSpec s = vit_spec("mini-ViT-S");
  s.name = "";
  s.posemb = "sincos2d";
  s.gelu = "erf";
  s.pool = "token";
  const nlohmann::json j = to_json(s);
  const ViTSpec back = vit_spec_from_json(j, "test");
  EXPECT_EQ(to_json(back), j);
  ModelConfig mc;
  mc.name = j.dump();
  mc.num_classes = 10;
  mc.in_channels = 1;
  auto m = build_model(mc);
  EXPECT_EQ(m->forward(torch::randn({2, 1, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(count_cost(*m, 32, 1).macs_per_image, formula_macs(back, 32, 1, 10));
  // Every registry member's printed spec builds the same model.
  const nlohmann::json printed = family_of("ViT-B-16").spec_json("ViT-B-16");
  EXPECT_EQ(count_cost(printed.dump(), 224, 3, 1000).params, count_cost("ViT-B-16", 224, 3, 1000).params);
  const nlohmann::json nf = family_of("mini-F0").spec_json("mini-F0");
  EXPECT_EQ(count_cost(nf.dump(), 32, 1, 10).macs_per_image, count_cost("mini-F0", 32, 1, 10).macs_per_image);
}

TEST(ViT, BadSpecsAndNamesAreUserErrorsNamingTheField) {
  auto msg = [](auto fn) {
    try {
      fn();
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  nlohmann::json j = to_json(vit_spec("mini-ViT-Ti"));
  j["heads"] = 5;
  EXPECT_NE(msg([&] { vit_spec_from_json(j, "spec.json"); }).find("heads"), std::string::npos);
  j = to_json(vit_spec("mini-ViT-Ti"));
  j["widht"] = 3;
  EXPECT_NE(msg([&] { vit_spec_from_json(j, "spec.json"); }).find("widht"), std::string::npos);
  j = to_json(vit_spec("mini-ViT-Ti"));
  j["pool"] = "max";
  EXPECT_NE(msg([&] { vit_spec_from_json(j, "spec.json"); }).find("pool"), std::string::npos);
  EXPECT_NE(msg([] { check_resolution("mini-ViT-S", 3); }).find(">= 4"), std::string::npos);
  EXPECT_NE(msg([] { model_info("ViT-Q-16"); }).find("mini-ViT-L"), std::string::npos);
  EXPECT_NE(msg([] { model_info("{\"family\": \"resnet\"}"); }).find("vit"), std::string::npos);
  EXPECT_NE(msg([] { model_info("{not json"); }).find("JSON"), std::string::npos);
}

TEST(ViT, WeightDecayOnlyOnWeightMatrices) {
  ModelConfig mc;
  mc.name = "mini-ViT-Ti";
  mc.num_classes = 10;
  mc.in_channels = 1;
  auto m = build_model(mc);
  int64_t decayed = 0;
  for (const auto& p : m->param_info()) {
    const bool kernel = p.param.dim() >= 2 && p.name != "pos_embed";
    EXPECT_EQ(p.weight_decay, kernel) << p.name;
    decayed += p.weight_decay;
  }
  EXPECT_EQ(decayed, 2 + 4 * vit_spec("mini-ViT-Ti").depth);  // patch kernel, head, and qkv/proj/fc1/fc2 per block
}

}  // namespace
}  // namespace nfscale::models
