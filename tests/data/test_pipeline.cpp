// test_pipeline.cpp - sampler (exactly once per epoch across random resumes), transforms (bilinear vs torch
// interpolate, centre crop, flip, normalisation), RandAugment ops, MixUp/CutMix/label smoothing targets, and the
// loader (bitwise determinism across thread counts and resumes, repeated-augmentation counts, eval pass, errors).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <random>

#include "fixtures.h"
#include "nfscale/data/dataset.h"
#include "nfscale/data/image_codec.h"
#include "nfscale/data/loader.h"
#include "nfscale/data/memory_dataset.h"
#include "nfscale/data/mix.h"
#include "nfscale/data/randaugment.h"
#include "nfscale/data/sampler.h"
#include "nfscale/data/transforms.h"
#include "nfscale/util/error.h"

using namespace nfscale::data;

namespace {

// n images 1 x h x w whose pixels encode the index; label = i % classes.
std::shared_ptr<Dataset> synthetic(int64_t n, int64_t h = 12, int64_t w = 12, int64_t classes = 5, int64_t c = 1) {
  std::vector<uint8_t> px;
  std::vector<int64_t> lab;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < c * h * w; ++k) px.push_back(static_cast<uint8_t>((i * 37 + k * 11 + (k % w) * 5) % 256));
    lab.push_back(i % classes);
  }
  return std::make_shared<MemoryDataset>(px, lab, c, h, w, classes, "synthetic", 0);
}

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), static_cast<size_t>(a.numel() * a.element_size())) == 0;
}

}  // namespace

TEST(Sampler, EachExampleOncePerEpochAcrossRandomResumes) {
  const int64_t n = 37;
  EpochSampler ref(n, 99);
  std::mt19937_64 gen(1);
  int64_t g = 0;
  std::map<int64_t, std::vector<int>> seen;  // epoch -> counts
  while (g < 6 * n) {
    EpochSampler s(n, 99);  // a "restarted job": a fresh sampler from the saved position only
    const int64_t chunk = 1 + static_cast<int64_t>(gen() % 23);  // straddles epoch boundaries
    for (int64_t i = 0; i < chunk && g < 6 * n; ++i, ++g) {
      const int64_t idx = s.at(g);
      EXPECT_EQ(idx, ref.at(g));
      auto& v = seen[g / n];
      v.resize(static_cast<size_t>(n));
      ++v[static_cast<size_t>(idx)];
    }
  }
  for (auto& [e, v] : seen)
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(v[static_cast<size_t>(i)], 1) << "epoch " << e << " example " << i;
  EXPECT_NE(ref.epoch_order(0), ref.epoch_order(1));
  EXPECT_NE(ref.epoch_order(0), EpochSampler(n, 100).epoch_order(0));
  EpochSampler ordered(n, 99, false);
  EXPECT_EQ(ordered.at(n + 5), 5);
}

TEST(Transforms, BilinearMatchesTorchInterpolate) {
  Image src(2, 5, 7);
  for (size_t i = 0; i < src.pixels.size(); ++i) src.pixels[i] = static_cast<uint8_t>((i * 53) % 256);
  auto t = to_tensor(src).to(torch::kFloat64).unsqueeze(0);  // [1,2,5,7]
  for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{11, 9}, {3, 4}, {5, 7}, {16, 16}}) {
    auto ref = torch::nn::functional::interpolate(
                   t, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{oh, ow})
                          .mode(torch::kBilinear).align_corners(false))
                   .squeeze(0);  // [2,oh,ow]
    auto ours = to_tensor(resize_bilinear(src, oh, ow)).to(torch::kFloat64);
    EXPECT_LE((ours - ref).abs().max().item<double>(), 0.5 + 1e-3) << oh << "x" << ow;
  }
  // Same size is the identity.
  EXPECT_EQ(resize_bilinear(src, 5, 7).pixels, src.pixels);
}

TEST(Transforms, CenterCropFlipAndEvalBox) {
  Image src(1, 4, 6);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) src.at(0, y, x) = static_cast<uint8_t>(10 * y + x);
  Image c = center_crop(src, 2, 2);
  EXPECT_EQ(c.pixels, (std::vector<uint8_t>{12, 13, 22, 23}));
  Image f = c;
  flip_horizontal(f);
  EXPECT_EQ(f.pixels, (std::vector<uint8_t>{13, 12, 23, 22}));
  // Eval at R = shorter side with crop fraction 1: exactly the integer centre crop.
  CropBox box = center_crop_box(4, 6, 4, 1.0);
  EXPECT_EQ(resample_bilinear(src, box, 4, 4).pixels, center_crop(src, 4, 4).pixels);
  // Fraction 0.5: resize shorter side to 8 (2x), crop the centre 4x4 = source box of 2x2 at (1, 2).
  box = center_crop_box(4, 6, 4, 0.5);
  EXPECT_DOUBLE_EQ(box.top, 1.0);
  EXPECT_DOUBLE_EQ(box.left, 2.0);
  EXPECT_DOUBLE_EQ(box.height, 2.0);
  EXPECT_DOUBLE_EQ(box.width, 2.0);
  // Normalisation.
  std::vector<float> out(4);
  normalize_into(c, {0.5}, {0.25}, out.data());
  EXPECT_FLOAT_EQ(out[0], static_cast<float>((12 / 255.0 - 0.5) / 0.25));
}

TEST(Transforms, RandomResizedCropBoxesRespectRanges) {
  AugmentConfig cfg;
  nfscale::SplitMix rng(3);
  for (int i = 0; i < 500; ++i) {
    CropBox b = random_resized_crop_box(28, 28, cfg, rng);
    EXPECT_GE(b.top, 0);
    EXPECT_GE(b.left, 0);
    EXPECT_LE(b.top + b.height, 28);
    EXPECT_LE(b.left + b.width, 28);
    EXPECT_GE(b.height * b.width, 1);
  }
  cfg.area_min = cfg.area_max = 1.0;
  cfg.aspect_min = cfg.aspect_max = 1.0;
  CropBox full = random_resized_crop_box(20, 20, cfg, rng);
  EXPECT_EQ(full.height, 20);
  EXPECT_EQ(full.width, 20);
}

TEST(RandAugment, OpsBehave) {
  Image img(1, 8, 8);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(50 + i);
  for (int op = 0; op < static_cast<int>(RandOp::kCount); ++op) {
    Image a = img;
    apply_rand_op(a, static_cast<RandOp>(op), 0.0, false, 128);  // magnitude 0: no geometric/enhance change
    if (op != int(RandOp::kAutoContrast) && op != int(RandOp::kEqualize) && op != int(RandOp::kSolarize))
      EXPECT_EQ(a.pixels, img.pixels) << rand_op_name(static_cast<RandOp>(op));
  }
  Image a = img;
  apply_rand_op(a, RandOp::kAutoContrast, 5, false, 0);
  EXPECT_EQ(a.pixels.front(), 0);
  EXPECT_EQ(a.pixels.back(), 255);
  a = img;
  apply_rand_op(a, RandOp::kSolarize, 10, false, 0);  // threshold 0: everything inverted
  EXPECT_EQ(a.pixels[0], 255 - 50);
  a = img;
  apply_rand_op(a, RandOp::kTranslateX, 10, false, 7);  // shift right by 0.45 * 8 = 3.6 -> 4 px
  EXPECT_EQ(a.at(0, 0, 0), 7);
  EXPECT_EQ(a.at(0, 0, 4), img.at(0, 0, 0));
  a = img;
  apply_rand_op(a, RandOp::kPosterize, 10, false, 0);  // 4 bits
  for (uint8_t v : a.pixels) EXPECT_EQ(v & 0x0F, 0);
  a = img;
  apply_rand_op(a, RandOp::kBrightness, 10, true, 0);  // factor 0.1
  EXPECT_EQ(a.pixels[0], 5);
  a = img;
  apply_rand_op(a, RandOp::kRotate, 30.0 / 3.0 * 3, false, 0);  // 90 degrees: a rotation permutes the interior
  apply_rand_op(a, RandOp::kRotate, 30.0 / 3.0 * 3, true, 0);
  EXPECT_EQ(a.pixels, img.pixels);
}

TEST(Mix, TargetsSumToOneAndSmoothingValues) {
  const int64_t B = 8, K = 5, C = 1, H = 6, W = 6;
  std::vector<int64_t> labels = {0, 1, 2, 3, 4, 0, 1, 2};
  std::vector<float> t(B * K);
  smooth_targets(labels.data(), B, K, 0.1, t.data());
  EXPECT_FLOAT_EQ(t[0], 0.92f);
  EXPECT_FLOAT_EQ(t[1], 0.02f);
  std::vector<float> img(B * C * H * W);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i / (C * H * W));  // row r is all r
  nfscale::SplitMix rng(5);
  double lam = mixup_rows(img.data(), t.data(), 0, 4, C * H * W, K, 0.2, rng);
  EXPECT_FLOAT_EQ(img[0], static_cast<float>(lam * 0 + (1 - lam) * 3));
  EXPECT_NEAR(t[0 * K + 0], lam * 0.92 + (1 - lam) * 0.02, 1e-6);
  EXPECT_NEAR(t[0 * K + 3], lam * 0.02 + (1 - lam) * 0.92, 1e-6);
  double cut = cutmix_rows(img.data(), t.data(), 4, 8, C, H, W, K, 1.0, rng);
  int from_partner = 0;
  for (int64_t i = 0; i < H * W; ++i) from_partner += img[4 * H * W + i] == 7.0f;
  EXPECT_NEAR(1.0 - cut, from_partner / double(H * W), 1e-9);  // lam corrected to the pasted area
  for (int64_t r = 0; r < B; ++r) {
    double s = 0;
    for (int64_t k = 0; k < K; ++k) s += t[r * K + k];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  // Beta sampler mean a / (a + b).
  double mean = 0;
  for (int i = 0; i < 4000; ++i) mean += sample_beta(0.2, 0.2, rng);
  EXPECT_NEAR(mean / 4000, 0.5, 0.03);
}

TEST(Loader, BitIdenticalAcrossThreadsAndResumes) {
  auto ds = synthetic(50);
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 11;
  o.resolution = 16;
  o.augment.mean = {0.5};
  o.augment.std = {0.5};
  std::vector<Batch> one;
  {
    o.threads = 1;
    Loader l(ds, {}, o);
    for (int i = 0; i < 16; ++i) one.push_back(l.next());  // 128 examples: 2.56 epochs
  }
  o.threads = 2;
  o.prefetch = 3;
  Loader l2(ds, {}, o);
  for (int i = 0; i < 5; ++i) {
    Batch b = l2.next();
    EXPECT_TRUE(same_bits(b.images, one[i].images));
    EXPECT_TRUE(same_bits(b.targets, one[i].targets));
    EXPECT_TRUE(same_bits(b.labels, one[i].labels));
  }
  // Resume from the saved position in a new loader with another thread count.
  o.threads = 3;
  Loader l3(ds, {}, o, l2.position());
  for (int i = 5; i < 16; ++i) {
    Batch b = l3.next();
    EXPECT_EQ(b.position, i * 8);
    EXPECT_TRUE(same_bits(b.images, one[i].images)) << i;
    EXPECT_TRUE(same_bits(b.targets, one[i].targets)) << i;
  }
  // Soft targets sum to 1; augmentation changed the images (not a plain resize).
  auto sums = one[0].targets.sum(1);
  EXPECT_TRUE(torch::allclose(sums, torch::ones_like(sums), 1e-5, 1e-5));
  o.seed = 12;
  Loader other(ds, {}, o);
  EXPECT_FALSE(same_bits(other.next().images, one[0].images));
}

TEST(Loader, RepeatedAugmentationCounts) {
  auto ds = synthetic(30);
  LoaderOptions o;
  o.batch_size = 12;
  o.multiplicity = 4;
  o.resolution = 12;
  o.augment.mixup_alpha = o.augment.cutmix_alpha = 0;
  o.augment.label_smoothing = 0;
  o.augment.mean = {0.5};
  o.augment.std = {0.5};
  Loader l(ds, {}, o);
  EXPECT_EQ(l.distinct_per_batch(), 3);
  std::vector<int> count(30);
  for (int s = 0; s < 10; ++s) {  // 10 steps x 3 distinct = 30 = one epoch
    Batch b = l.next();
    ASSERT_EQ(b.size(), 12);
    EXPECT_EQ(b.distinct, 3);
    for (int64_t d = 0; d < 3; ++d) {
      // The 4 copies (rows j*3 + d) have the same label but different augmentations.
      for (int64_t j = 1; j < 4; ++j) EXPECT_EQ(b.labels[j * 3 + d].item<int64_t>(), b.labels[d].item<int64_t>());
      EXPECT_FALSE(torch::equal(b.images[d], b.images[3 + d]));
    }
  }
  EXPECT_EQ(l.position(), 30);  // positions count distinct images: one pass in 10 steps instead of 40
  LoaderOptions bad = o;
  bad.multiplicity = 5;
  EXPECT_THROW(Loader(ds, {}, bad), nfscale::UserError);
}

TEST(Loader, EvalPassOrderedWithShortLastBatchAndChannels) {
  auto ds = synthetic(10, 8, 8);
  LoaderOptions o;
  o.train = false;
  o.batch_size = 4;
  o.resolution = 8;
  o.channels = 3;
  o.augment.mean = {0.0};
  o.augment.std = {1.0};
  std::vector<int64_t> subset = {9, 3, 5, 0, 1};
  Loader l(ds, subset, o);
  EXPECT_EQ(l.batches_per_pass(), 2);
  Batch a = l.next(), b = l.next();
  EXPECT_FALSE(l.has_next());
  EXPECT_THROW(l.next(), std::out_of_range);
  ASSERT_EQ(a.size(), 4);
  ASSERT_EQ(b.size(), 1);
  EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{4, 3, 8, 8}));
  // Eval at native size is the identity: pixel / 255; channels replicated; one-hot targets.
  auto expect = ds->get(9).image.to(torch::kFloat32) / 255.0;
  EXPECT_TRUE(torch::allclose(a.images[0][0], expect[0]));
  EXPECT_TRUE(torch::equal(a.images[0][2], a.images[0][0]));
  EXPECT_EQ(a.labels[1].item<int64_t>(), ds->label(3));
  EXPECT_EQ(b.labels[0].item<int64_t>(), ds->label(1));
  EXPECT_FLOAT_EQ(a.targets[0][ds->label(9)].item<float>(), 1.0f);
  o.drop_last = true;
  Loader d(ds, subset, o);
  d.next();
  EXPECT_FALSE(d.has_next());
}

TEST(Loader, WorkerErrorsReachTheCaller) {
  auto dir = nfscale::data::testing::fresh_dir("loader_err");
  std::filesystem::create_directories(dir / "c0");
  std::string png = encode_png(Image(3, 8, 8, 100));
  std::string bad = png;
  for (size_t i = 40; i < bad.size() - 20; ++i) bad[i] = char(i * 31);
  nfscale::data::testing::write_bytes(dir / "c0" / "a.png", png);
  nfscale::data::testing::write_bytes(dir / "c0" / "b.png", bad);
  DataSpec spec{"imagefolder", dir.string(), "train", false};
  LoaderOptions o;
  o.train = false;
  o.batch_size = 2;
  o.resolution = 8;
  Loader l(open_dataset(spec), {}, o);
  try {
    l.next();
    ADD_FAILURE() << "no error";
  } catch (const nfscale::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("b.png"), std::string::npos) << e.what();
  }
  EXPECT_EQ(l.position(), 0);
  spec.skip_bad = true;
  auto ds = open_dataset(spec);
  Loader ok(ds, {}, o);
  Batch b = ok.next();
  EXPECT_EQ(b.size(), 2);
  EXPECT_EQ(ds->replaced(), 1);
  EXPECT_TRUE(torch::equal(b.images[0], b.images[1]));  // the bad one replaced by the next good image
}
