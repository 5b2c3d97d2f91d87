// test_dedup.cpp - perceptual hashes find shifted, noised and rescaled copies and keep distinct images apart; the
// multi-index search equals brute force; dedup_against drops exactly the planted copies; bad input fails clearly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "nfscale/data/dedup.h"
#include "nfscale/data/memory_dataset.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::data {
namespace {

double gauss(SplitMix& r) {
  double u1 = std::max(r.uniform(), 1e-300), u2 = r.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

// A 28x28 grey image of a few random Gaussian blobs (smooth, like a centred clothing item).
Image blobs(uint64_t seed, int64_t size = 28) {
  SplitMix r(seed);
  Image img(1, size, size);
  struct Blob { double x, y, s, a; };
  std::vector<Blob> b;
  for (int k = 0; k < 4; ++k) b.push_back({r.uniform(0.2, 0.8), r.uniform(0.2, 0.8), r.uniform(0.08, 0.25), r.uniform(80, 255)});
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      double v = 0;
      for (auto& q : b) {
        double dx = (x + 0.5) / size - q.x, dy = (y + 0.5) / size - q.y;
        v += q.a * std::exp(-(dx * dx + dy * dy) / (2 * q.s * q.s));
      }
      img.at(0, y, x) = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  return img;
}

Image shifted(const Image& src, int dx, int dy) {  // edge pixels repeated
  Image out(1, src.height, src.width);
  for (int64_t y = 0; y < src.height; ++y)
    for (int64_t x = 0; x < src.width; ++x)
      out.at(0, y, x) = src.at(0, std::clamp<int64_t>(y - dy, 0, src.height - 1), std::clamp<int64_t>(x - dx, 0, src.width - 1));
  return out;
}

Image noised(const Image& src, double sd, uint64_t seed) {
  SplitMix r(seed);
  Image out = src;
  for (auto& p : out.pixels) p = static_cast<uint8_t>(std::clamp(p + sd * gauss(r), 0.0, 255.0));
  return out;
}

Image rescaled(const Image& src, int64_t size) {  // bilinear
  Image out(1, size, size);
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      double sy = std::clamp((y + 0.5) * src.height / size - 0.5, 0.0, src.height - 1.0);
      double sx = std::clamp((x + 0.5) * src.width / size - 0.5, 0.0, src.width - 1.0);
      int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
      int64_t y1 = std::min(y0 + 1, src.height - 1), x1 = std::min(x0 + 1, src.width - 1);
      double fy = sy - y0, fx = sx - x0;
      double v = (1 - fy) * ((1 - fx) * src.at(0, y0, x0) + fx * src.at(0, y0, x1)) +
                 fy * ((1 - fx) * src.at(0, y1, x0) + fx * src.at(0, y1, x1));
      out.at(0, y, x) = static_cast<uint8_t>(std::lround(v));
    }
  return out;
}

double quantile(std::vector<int> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1))];
}

// Modified copies are much closer than distinct images: the median distance of a noised (sd 8) or rescaled
// (20 / 36 px) copy is <= 4 bits and of a 1-px shift <= 10 bits, against ~28 bits between distinct images
// (next test). Worst cases are larger (low-contrast images have DCT coefficients near the median), so the bound
// is on the median and the 90th percentile.
TEST(Dedup, ModifiedCopiesAreCloseForBothHashes) {
  for (HashKind kind : {HashKind::Dct, HashKind::Difference}) {
    std::vector<int> shift, noise, scale;
    for (uint64_t s = 0; s < 100; ++s) {
      Image a = blobs(s);
      uint64_t h = perceptual_hash(a, kind);
      EXPECT_EQ(perceptual_hash(a, kind), h);  // deterministic
      shift.push_back(hamming(h, perceptual_hash(shifted(a, 1, 0), kind)));
      shift.push_back(hamming(h, perceptual_hash(shifted(a, 0, -1), kind)));
      noise.push_back(hamming(h, perceptual_hash(noised(a, 8, s), kind)));
      scale.push_back(hamming(h, perceptual_hash(rescaled(a, 36), kind)));
      scale.push_back(hamming(h, perceptual_hash(rescaled(a, 20), kind)));
    }
    std::printf("%s hash, distance median / 90th percentile / max over 100 images: 1-px shift %g/%g/%g, noise sd 8 "
                "%g/%g/%g, rescale 20/36 px %g/%g/%g\n",
                hash_kind_name(kind), quantile(shift, 0.5), quantile(shift, 0.9), quantile(shift, 1),
                quantile(noise, 0.5), quantile(noise, 0.9), quantile(noise, 1), quantile(scale, 0.5),
                quantile(scale, 0.9), quantile(scale, 1));
    EXPECT_LE(quantile(noise, 0.5), 4);
    EXPECT_LE(quantile(scale, 0.5), 4);
    EXPECT_LE(quantile(shift, 0.5), 10);
    EXPECT_LE(quantile(noise, 0.9), 12);
    EXPECT_LE(quantile(scale, 0.9), 12);
    EXPECT_LE(quantile(shift, 0.9), 16);
  }
}

TEST(Dedup, DistinctImagesAreFarApart) {
  // 300 independent blob images: pairwise distances centre near 32 bits and almost none fall within 4.
  std::vector<uint64_t> h;
  for (uint64_t s = 1000; s < 1300; ++s) h.push_back(perceptual_hash(blobs(s)));
  int64_t pairs = 0, close = 0;
  double mean = 0;
  for (size_t i = 0; i < h.size(); ++i)
    for (size_t j = i + 1; j < h.size(); ++j) {
      int d = hamming(h[i], h[j]);
      ++pairs;
      close += d <= 4;
      mean += d;
    }
  mean /= pairs;
  std::printf("distinct images: mean distance %.1f bits, %lld of %lld pairs within 4\n", mean,
              static_cast<long long>(close), static_cast<long long>(pairs));
  EXPECT_GT(mean, 22);
  EXPECT_LE(close, pairs / 1000);
}

TEST(Dedup, MultiIndexSearchEqualsBruteForce) {
  SplitMix r(7);
  std::vector<uint64_t> base;
  for (int i = 0; i < 3000; ++i) base.push_back(r.next());
  for (int i = 0; i < 300; ++i) {  // planted neighbours at distances 0..12
    uint64_t h = base[r.below(base.size())];
    for (uint64_t k = 0, flips = r.below(13); k < flips; ++k) h ^= uint64_t{1} << r.below(64);
    base.push_back(h);
  }
  HashIndex index(base);
  for (int threshold : {1, 3, 4, 7, 8, 12}) {
    int64_t found = 0;
    for (int q = 0; q < 400; ++q) {
      uint64_t query = base[r.below(base.size())] ^ (uint64_t{1} << r.below(64));
      std::vector<int64_t> brute;
      for (size_t i = 0; i < base.size(); ++i)
        if (hamming(base[i], query) <= threshold) brute.push_back(static_cast<int64_t>(i));
      ASSERT_EQ(index.within(query, threshold), brute) << "threshold " << threshold;
      found += static_cast<int64_t>(brute.size());
    }
    EXPECT_GT(found, 0);
  }
}

std::shared_ptr<Dataset> dataset_of(const std::vector<Image>& images) {
  std::vector<uint8_t> px;
  std::vector<int64_t> labels;
  for (auto& im : images) {
    px.insert(px.end(), im.pixels.begin(), im.pixels.end());
    labels.push_back(0);
  }
  return std::make_shared<MemoryDataset>(std::move(px), std::move(labels), 1, 28, 28, 1, "test images", 0);
}

TEST(Dedup, DedupAgainstFindsThePlantedCopiesAndEqualsBruteForce) {
  std::vector<Image> test, train;
  for (uint64_t s = 0; s < 50; ++s) test.push_back(blobs(5000 + s));
  for (uint64_t s = 0; s < 200; ++s) train.push_back(blobs(9000 + s));
  train[10] = test[3];                                // exact copy
  train[120] = rescaled(rescaled(test[20], 36), 28);  // rescaled there and back
  train[121] = test[20];                              // second copy of the same test image
  auto tr = dataset_of(train), te = dataset_of(test);
  for (int threshold : {0, 2, 4}) {
    DedupOptions o;
    o.threshold = threshold;
    o.examples = 3;
    DedupReport r = dedup_against(*tr, *te, o);
    // Brute force over all pairs on the same hashes.
    std::vector<int64_t> expect;
    std::vector<char> matched(test.size(), 0);
    int64_t pairs = 0;
    for (size_t i = 0; i < train.size(); ++i) {
      bool any = false;
      for (size_t j = 0; j < test.size(); ++j)
        if (hamming(perceptual_hash(train[i]), perceptual_hash(test[j])) <= threshold) {
          any = true;
          matched[j] = 1;
          ++pairs;
        }
      if (any) expect.push_back(static_cast<int64_t>(i));
    }
    EXPECT_EQ(r.drop, expect) << "threshold " << threshold;
    EXPECT_EQ(r.pairs, pairs);
    EXPECT_EQ(r.other_matched, std::count(matched.begin(), matched.end(), 1));
    for (int64_t planted : {10, 120, 121}) EXPECT_TRUE(std::binary_search(r.drop.begin(), r.drop.end(), planted));
    ASSERT_EQ(r.examples.size(), 3u);
    EXPECT_EQ(r.examples[0].train_index, 10);  // closest first, then by train index
    EXPECT_EQ(r.examples[0].distance, 0);
    int64_t total = 0;
    for (auto c : r.by_distance) total += c;
    EXPECT_EQ(total, static_cast<int64_t>(r.drop.size()));
  }
  // Threshold 0 with a restricted training list: indices are dataset indices.
  DedupOptions o;
  DedupReport exact = dedup_against(*tr, *te, o, {0, 10, 121, 150});
  EXPECT_EQ(exact.drop, (std::vector<int64_t>{10, 121}));
  EXPECT_EQ(remove_indices({0, 10, 121, 150}, exact.drop), (std::vector<int64_t>{0, 150}));
  EXPECT_EQ(to_json(exact)["train_dropped"].get<int64_t>(), 2);
}

TEST(Dedup, BadInputThrowsUserError) {
  auto ds = dataset_of({blobs(1), blobs(2)});
  DedupOptions o;
  o.threshold = 33;
  EXPECT_THROW(dedup_against(*ds, *ds, o), UserError);
  o.threshold = -1;
  EXPECT_THROW(dedup_against(*ds, *ds, o), UserError);
  o.threshold = 4;
  o.examples = -2;
  try {
    dedup_against(*ds, *ds, o);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--examples"), std::string::npos) << e.what();
  }
  EXPECT_THROW(perceptual_hash(Image()), UserError);
  EXPECT_THROW(perceptual_hash(Image(5, 8, 8)), UserError);
  EXPECT_THROW(parse_hash_kind("md5", "--hash"), UserError);
  EXPECT_EQ(parse_hash_kind("dhash", "--hash"), HashKind::Difference);
  // Colour images hash through their luma: the grey image replicated to RGB hashes the same.
  Image g = blobs(3), rgb(3, 28, 28);
  for (int c = 0; c < 3; ++c) std::copy(g.pixels.begin(), g.pixels.end(), rgb.plane(c));
  EXPECT_LE(hamming(perceptual_hash(g), perceptual_hash(rgb)), 1);
}

}  // namespace
}  // namespace nfscale::data
