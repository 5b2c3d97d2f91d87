// test_dedup.cpp - perceptual hashes find shifted, noised and rescaled copies and keep distinct images apart; the
// multi-index search equals brute force; the pixel check confirms modified copies and rejects look-alikes that the
// hash matches (same silhouette, other texture); dedup_against drops exactly the planted copies; bad input fails
// clearly, naming the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "nfscale/data/dedup.h"
#include "nfscale/data/memory_dataset.h"
#include "nfscale/data/pixel_match.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"
#include "synthetic_images.h"

namespace nfscale::data {
namespace {

using testing::blobs;
using testing::garment;
using testing::noised;
using testing::rescaled;
using testing::shifted;

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

// A dataset of equally sized grey images (label 0).
std::shared_ptr<Dataset> dataset_of(const std::vector<Image>& images) {
  std::vector<uint8_t> px;
  std::vector<int64_t> labels;
  for (auto& im : images) {
    px.insert(px.end(), im.pixels.begin(), im.pixels.end());
    labels.push_back(0);
  }
  const int64_t h = images.at(0).height, w = images.at(0).width;
  return std::make_shared<MemoryDataset>(std::move(px), std::move(labels), 1, h, w, 1, "test images", 0);
}

TEST(Dedup, DedupAgainstFindsThePlantedCopiesAndEqualsBruteForce) {
  std::vector<Image> test, train;
  for (uint64_t s = 0; s < 50; ++s) test.push_back(blobs(5000 + s));
  for (uint64_t s = 0; s < 200; ++s) train.push_back(blobs(9000 + s));
  train[10] = test[3];                                // exact copy
  train[120] = rescaled(rescaled(test[20], 36), 28);  // rescaled there and back
  train[121] = test[20];                              // second copy of the same test image
  auto tr = dataset_of(train), te = dataset_of(test);
  for (int threshold : {0, 2, 4}) {  // the hash stage alone
    DedupOptions o;
    o.threshold = threshold;
    o.confirm = false;
    o.centre = false;
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
    EXPECT_EQ(r.candidate_pairs, pairs);
    EXPECT_EQ(r.candidate_train, static_cast<int64_t>(expect.size()));
    EXPECT_EQ(r.other_matched, std::count(matched.begin(), matched.end(), 1));
    for (int64_t planted : {10, 120, 121}) EXPECT_TRUE(std::binary_search(r.drop.begin(), r.drop.end(), planted));
    ASSERT_EQ(r.examples.size(), 3u);
    EXPECT_EQ(r.examples[0].train_index, 10);  // closest first, then by train index
    EXPECT_EQ(r.examples[0].distance, 0);
    int64_t total = 0;
    for (auto c : r.by_distance) total += c;
    EXPECT_EQ(total, static_cast<int64_t>(r.drop.size()));
  }
  // The defaults (loose hash, then the pixel check): exactly the planted copies, each matched to its original.
  DedupReport r = dedup_against(*tr, *te);
  EXPECT_EQ(r.drop, (std::vector<int64_t>{10, 120, 121}));
  EXPECT_EQ(r.pairs, 3);
  EXPECT_EQ(r.other_matched, 2);
  EXPECT_GE(r.candidate_pairs, r.pairs);
  ASSERT_EQ(r.examples.size(), 3u);
  EXPECT_NEAR(r.examples[0].correlation, 1.0, 1e-6);  // the exact copies first
  EXPECT_NEAR(r.examples[0].mean_abs_diff, 0.0, 1e-6);
  // A restricted training list: indices are dataset indices.
  DedupReport some = dedup_against(*tr, *te, {}, {0, 10, 121, 150});
  EXPECT_EQ(some.drop, (std::vector<int64_t>{10, 121}));
  EXPECT_EQ(remove_indices({0, 10, 121, 150}, some.drop), (std::vector<int64_t>{0, 150}));
  const nlohmann::json j = to_json(some);
  EXPECT_EQ(j["train_dropped"].get<int64_t>(), 2);
  EXPECT_EQ(j["candidates"]["pairs"].get<int64_t>(), some.candidate_pairs);
  EXPECT_EQ(j["correlation_histogram"].size(), 21u);
}

TEST(PixelMatch, FindsTheShiftAndTreatsFlatImages) {
  constexpr int S = 16;
  const std::vector<float> a = thumbnail(garment(1, 1), S);  // [16 x 16]
  PixelMatch same = match_pixels(a.data(), a.data(), S, 2);
  EXPECT_NEAR(same.correlation, 1.0, 1e-9);
  EXPECT_EQ(same.mean_abs_diff, 0.0);
  EXPECT_EQ(same.dx, 0);
  EXPECT_EQ(same.dy, 0);
  // b(y, x) = a(y - 1, x - 2): a(y, x) sits at b(y + 1, x + 2).
  std::vector<float> b(S * S, 0.0f);
  for (int y = 1; y < S; ++y)
    for (int x = 2; x < S; ++x) b[y * S + x] = a[(y - 1) * S + x - 2];
  PixelMatch moved = match_pixels(a.data(), b.data(), S, 2);
  EXPECT_EQ(moved.dx, 2);
  EXPECT_EQ(moved.dy, 1);
  EXPECT_NEAR(moved.correlation, 1.0, 1e-6);
  EXPECT_NEAR(moved.mean_abs_diff, 0.0, 1e-4);
  EXPECT_LT(match_pixels(a.data(), b.data(), S, 0).correlation, 0.9);  // without the shift search: no match
  // A brighter copy correlates perfectly but differs by the offset; flat images correlate 1 with each other only.
  std::vector<float> bright = a, flat(S * S, 40.0f), flat2(S * S, 40.0f);
  for (auto& v : bright) v += 30;
  PixelMatch br = match_pixels(a.data(), bright.data(), S, 2);
  EXPECT_NEAR(br.correlation, 1.0, 1e-6);
  EXPECT_NEAR(br.mean_abs_diff, 30.0, 1e-3);
  EXPECT_EQ(match_pixels(flat.data(), flat2.data(), S, 2).correlation, 1.0);
  EXPECT_EQ(match_pixels(flat.data(), a.data(), S, 2).correlation, 0.0);
  EXPECT_THROW(match_pixels(a.data(), a.data(), S, S), UserError);
}

// 60 originals (40 garments, 20 blob images) and, per modification, a modified copy of each. The pixel check must
// pass every copy against its own original; end to end (hash candidates, then the check) the defaults must find
// at least `min_found` of the 60, each matched to its own original only. The hash stage limits recall: with the
// centring a whole-pixel shift usually hashes alike, but content pushed out of the frame (the garments' sleeves
// touch the border) moves the centroid, and noise or texture flips pHash bits whose DCT coefficients sit near the
// median (the measured counts are printed; docs/data.md). A 0.9x copy upsampled back to 28 px is blurred: the
// check passes three quarters of them.
TEST(Dedup, FindsShiftedNoisedAndRescaledCopies) {
  std::vector<Image> originals;
  for (uint64_t s = 0; s < 40; ++s) originals.push_back(garment(100 + s, 500 + s));
  for (uint64_t s = 0; s < 20; ++s) originals.push_back(blobs(7000 + s));
  auto te = dataset_of(originals);
  struct Mod {
    const char* name;
    std::function<Image(const Image&, uint64_t)> apply;
    size_t min_found;
    bool check_passes_all = true;  // the pixel check passes every copy
  };
  const std::vector<Mod> mods = {
      {"shift +1,0", [](const Image& a, uint64_t) { return shifted(a, 1, 0, 0); }, 55},
      {"shift 0,-1", [](const Image& a, uint64_t) { return shifted(a, 0, -1, 0); }, 55},
      {"shift +2,+1", [](const Image& a, uint64_t) { return shifted(a, 2, 1, 0); }, 45},
      {"shift -2,-2", [](const Image& a, uint64_t) { return shifted(a, -2, -2, 0); }, 33},
      {"noise sd 0.05", [](const Image& a, uint64_t s) { return noised(a, 0.05 * 255, s); }, 50},
      {"shift +1,+1 and noise", [](const Image& a, uint64_t s) { return noised(shifted(a, 1, 1, 0), 0.05 * 255, s); },
       40},
      {"28->32->28", [](const Image& a, uint64_t) { return rescaled(rescaled(a, 32), 28); }, 60},
      {"0.9x (28->25 px)", [](const Image& a, uint64_t) { return rescaled(a, 25); }, 40, false},
  };
  const DedupOptions d;
  for (const Mod& m : mods) {
    std::vector<Image> copies;
    for (size_t i = 0; i < originals.size(); ++i) copies.push_back(m.apply(originals[i], 90 + i));
    // Each copy against its own original: the pixel check's measures.
    double corr = 1, mad = 0, block = 0;
    int hash = 0, passed = 0;
    for (size_t i = 0; i < copies.size(); ++i) {
      std::vector<float> a = thumbnail(copies[i], d.thumb_size), b = thumbnail(originals[i], d.thumb_size);
      PixelMatch pm = match_pixels(a.data(), b.data(), d.thumb_size, d.max_shift, 256, d.block);
      corr = std::min(corr, pm.correlation);
      mad = std::max(mad, pm.mean_abs_diff);
      block = std::max(block, pm.max_block_diff);
      hash = std::max(hash, hamming(candidate_hash(copies[i], d), candidate_hash(originals[i], d)));
      passed += pm.correlation >= d.min_correlation && pm.mean_abs_diff <= d.max_mean_abs_diff &&
                pm.max_block_diff <= d.max_block_diff;
    }
    DedupOptions o;
    o.examples = 1000;
    DedupReport r = dedup_against(*dataset_of(copies), *te, o);
    int64_t own = 0;
    for (auto& p : r.examples) own += p.train_index == p.other_index;
    std::printf("%-22s pixel check passed %d of %zu (worst: correlation %.4f, mean |diff| %.1f, window |diff| %.1f); "
                "hash distance up to %d; found %zu (%lld hash candidates)\n",
                m.name, passed, copies.size(), corr, mad, block, hash, r.drop.size(),
                static_cast<long long>(r.candidate_train));
    if (m.check_passes_all) {
      EXPECT_EQ(passed, static_cast<int>(copies.size())) << m.name;
    }
    EXPECT_GE(r.drop.size(), m.min_found) << m.name;
    EXPECT_EQ(own, static_cast<int64_t>(r.drop.size())) << m.name << ": a copy matched another original";
    EXPECT_EQ(r.pairs, own) << m.name << ": a copy also matched another original";
  }
}

// Distinct images with the same silhouette (other stripes, checks, brightness): the hash matches many of them,
// the pixel check none.
TEST(Dedup, LeavesLookAlikesOfTheSameSilhouetteAlone) {
  std::vector<Image> test, train;
  for (uint64_t s = 0; s < 60; ++s) {
    test.push_back(garment(300 + s, 1000 + s));
    train.push_back(garment(300 + s, 2000 + s));  // same shape, another texture
  }
  DedupOptions o;
  o.examples = 5;
  DedupReport r = dedup_against(*dataset_of(train), *dataset_of(test), o);
  int64_t same_shape_candidates = 0;
  for (size_t i = 0; i < train.size(); ++i)
    same_shape_candidates += hamming(candidate_hash(train[i], o), candidate_hash(test[i], o)) <= o.threshold;
  std::printf("look-alikes: %lld of %zu same-silhouette pairs are hash candidates, %lld candidate pairs in all; "
              "confirmed %zu; best near miss correlation %.4f, mean |diff| %.1f\n",
              static_cast<long long>(same_shape_candidates), train.size(), static_cast<long long>(r.candidate_pairs),
              r.drop.size(), r.near_misses.empty() ? 0.0 : r.near_misses[0].correlation,
              r.near_misses.empty() ? 0.0 : r.near_misses[0].mean_abs_diff);
  EXPECT_GE(same_shape_candidates, 30) << "the test needs look-alikes that the hash alone would match";
  EXPECT_TRUE(r.drop.empty());
  EXPECT_EQ(r.pairs, 0);
  EXPECT_EQ(r.other_matched, 0);
  EXPECT_EQ(static_cast<int64_t>(r.near_misses.size()), std::min<int64_t>(5, r.candidate_pairs));
  // Without the pixel check the same candidates would all be dropped.
  o.confirm = false;
  EXPECT_EQ(static_cast<int64_t>(dedup_against(*dataset_of(train), *dataset_of(test), o).drop.size()),
            r.candidate_train);
}

TEST(Dedup, BadInputThrowsUserErrorNamingTheField) {
  auto ds = dataset_of({blobs(1), blobs(2)});
  auto expect_error = [&](const DedupOptions& o, const std::string& field) {
    try {
      dedup_against(*ds, *ds, o);
      ADD_FAILURE() << field << ": accepted";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  DedupOptions o;
  o.threshold = 33;
  expect_error(o, "threshold");
  o.threshold = -1;
  expect_error(o, "threshold");
  o = {};
  o.examples = -2;
  expect_error(o, "--examples");
  o = {};
  o.thumb_size = 3;
  expect_error(o, "thumb_size");
  o = {};
  o.max_shift = 8;  // more than a quarter of the 28 px thumbnail
  expect_error(o, "max_shift");
  o = {};
  o.block = 0;
  expect_error(o, "block");
  o = {};
  o.max_block_diff = 300;
  expect_error(o, "--max-block-diff");
  o = {};
  o.min_correlation = 0;
  expect_error(o, "min_correlation");
  o.min_correlation = 1.5;
  expect_error(o, "min_correlation");
  o = {};
  o.max_mean_abs_diff = 0;
  expect_error(o, "--max-mad");
  o.confirm = false;  // the pixel check's fields are not used then
  EXPECT_NO_THROW(dedup_against(*ds, *ds, o));
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
