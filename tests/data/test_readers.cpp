// test_readers.cpp - dataset readers on generated fixtures: IDX (plain/gzip, bad magic/size/label, truncated gzip),
// CIFAR binary, ImageFolder (JPEG/PNG round trip, corrupt/truncated files, empty class folder, skip_bad counting),
// sklearn digits (real file and malformed rows), spec parsing, held-out splits, real Fashion-MNIST sizes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "fixtures.h"
#include "nfscale/data/dataset.h"
#include "nfscale/data/image_codec.h"
#include "nfscale/data/readers.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

using namespace nfscale::data;
using namespace nfscale::data::testing;
namespace fs = std::filesystem;

namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const nfscale::UserError& e) {
    return e.what();
  }
  return "<no UserError>";
}

DataSpec spec_for(const std::string& kind, const fs::path& dir, const std::string& split = "train",
                  bool skip_bad = false) {
  DataSpec s;
  s.kind = kind;
  s.path = dir.string();
  s.split = split;
  s.skip_bad = skip_bad;
  return s;
}

}  // namespace

TEST(Idx, RoundTripPlainAndGzip) {
  for (bool gz : {false, true}) {
    auto dir = fresh_dir(gz ? "idx_gz" : "idx_plain");
    std::string sfx = gz ? ".gz" : "";
    write_bytes(dir / ("train-images-idx3-ubyte" + sfx), idx_images(5, 4, 3), gz);
    write_bytes(dir / ("train-labels-idx1-ubyte" + sfx), idx_labels({3, 1, 4, 1, 5}), gz);
    auto ds = open_dataset(spec_for("mnist", dir));
    ASSERT_EQ(ds->size(), 5);
    EXPECT_EQ(ds->num_classes(), 10);
    EXPECT_EQ(ds->channels(), 1);
    EXPECT_EQ(ds->label(2), 4);
    Example ex = ds->get(3);
    ASSERT_EQ(ex.image.sizes(), (std::vector<int64_t>{1, 4, 3}));
    auto acc = ex.image.accessor<uint8_t, 3>();
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 3; ++x) EXPECT_EQ(acc[0][y][x], (3 * 7 + y * 3 + x) % 256);
    EXPECT_EQ(ex.label, 1);
    // Generic idx infers the class count.
    EXPECT_EQ(open_dataset(spec_for("idx", dir))->num_classes(), 6);
  }
}

TEST(Idx, BadFilesNameTheFileAndProblem) {
  auto dir = fresh_dir("idx_bad");
  auto lab = dir / "train-labels-idx1-ubyte", img = dir / "train-images-idx3-ubyte";
  write_bytes(lab, idx_labels({1, 2, 3}));
  write_bytes(img, idx_images(3, 4, 4, 0x802));
  std::string e = error_of([&] { open_dataset(spec_for("mnist", dir)); });
  EXPECT_NE(e.find(img.string()), std::string::npos) << e;
  EXPECT_NE(e.find("wrong IDX magic"), std::string::npos) << e;

  std::string good = idx_images(3, 4, 4);
  write_bytes(img, good.substr(0, good.size() - 5));  // truncated
  e = error_of([&] { open_dataset(spec_for("mnist", dir)); });
  EXPECT_NE(e.find("wrong size"), std::string::npos) << e;

  write_bytes(img, good);
  write_bytes(lab, idx_labels({1, 2}));  // count mismatch
  e = error_of([&] { open_dataset(spec_for("mnist", dir)); });
  EXPECT_NE(e.find("holds 2 labels"), std::string::npos) << e;

  write_bytes(lab, idx_labels({1, 12, 3}));  // label out of range
  e = error_of([&] { open_dataset(spec_for("mnist", dir)); });
  EXPECT_NE(e.find("label 12"), std::string::npos) << e;
  EXPECT_NE(e.find(lab.string()), std::string::npos) << e;
  auto ds = open_dataset(spec_for("mnist", dir, "train", /*skip_bad=*/true));
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->skipped(), 1);
  EXPECT_EQ(ds->label(1), 3);
  EXPECT_EQ(ds->get(1).image[0][0][0].item<int>(), (2 * 7) % 256);  // example 2's pixels kept with its label

  // Truncated gzip stream.
  fs::remove(img);
  write_bytes(dir / "gz_tmp", good, true);
  std::string gz = nfscale::read_file((dir / "gz_tmp").string());
  write_bytes(dir / "train-images-idx3-ubyte.gz", gz.substr(0, gz.size() / 2));
  write_bytes(lab, idx_labels({1, 2, 3}));
  e = error_of([&] { open_dataset(spec_for("mnist", dir)); });
  EXPECT_NE(e.find("gzip"), std::string::npos) << e;

  e = error_of([&] { open_dataset(spec_for("mnist", dir / "missing")); });
  EXPECT_NE(e.find("not a directory"), std::string::npos) << e;
}

TEST(Cifar, RoundTripAndBadSize) {
  auto dir = fresh_dir("cifar");
  std::string rec;
  for (int r = 0; r < 3; ++r) {
    rec.push_back(char(7 - r));  // coarse
    rec.push_back(char(90 + r));  // fine
    for (int i = 0; i < 3072; ++i) rec.push_back(char((r + i) % 251));
  }
  write_bytes(dir / "train.bin", rec);
  auto ds = open_dataset(spec_for("cifar100", dir));
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->num_classes(), 100);
  EXPECT_EQ(ds->label(2), 92);
  auto t = ds->get(1).image;  // [3,32,32]; byte i of the record is channel i/1024, row (i%1024)/32, col i%32
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(t[2][5][7].item<int>(), (1 + 2048 + 5 * 32 + 7) % 251);

  write_bytes(dir / "train.bin", rec.substr(0, rec.size() - 1));
  std::string e = error_of([&] { open_dataset(spec_for("cifar100", dir)); });
  EXPECT_NE(e.find("not a positive multiple"), std::string::npos) << e;
  EXPECT_NE(e.find("train.bin"), std::string::npos) << e;

  // CIFAR-10: test_batch.bin with an out-of-range label.
  std::string ten;
  for (int r = 0; r < 2; ++r) {
    ten.push_back(char(r == 1 ? 10 : 4));
    ten.append(3072, char(r));
  }
  write_bytes(dir / "test_batch.bin", ten);
  e = error_of([&] { open_dataset(spec_for("cifar10", dir, "test")); });
  EXPECT_NE(e.find("label 10"), std::string::npos) << e;
  auto ok = open_dataset(spec_for("cifar10", dir, "test", true));
  EXPECT_EQ(ok->size(), 1);
  EXPECT_EQ(ok->skipped(), 1);
}

namespace {
Image pattern(int64_t c, int64_t h, int64_t w, int seed) {
  Image im(c, h, w);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) im.at(k, y, x) = static_cast<uint8_t>((seed * 40 + k * 60 + y * 8 + x * 4) % 256);
  return im;
}
}  // namespace

TEST(ImageFolder, JpegPngRoundTripAndChannelConversion) {
  auto dir = fresh_dir("folder");
  fs::create_directories(dir / "train" / "b_cat");
  fs::create_directories(dir / "train" / "a_dog");
  Image rgb = pattern(3, 12, 10, 1), grey = pattern(1, 9, 11, 2), rgba = pattern(4, 5, 6, 3);
  write_bytes(dir / "train" / "a_dog" / "1.png", encode_png(rgb));
  write_bytes(dir / "train" / "a_dog" / "2.png", encode_png(grey));
  write_bytes(dir / "train" / "b_cat" / "1.jpg", encode_jpeg(rgb, 100));
  write_bytes(dir / "train" / "b_cat" / "2.png", encode_png(rgba));
  write_bytes(dir / "train" / "b_cat" / "notes.txt", "ignored");
  auto ds = open_dataset(spec_for("imagefolder", dir));
  ASSERT_EQ(ds->size(), 4);
  EXPECT_EQ(ds->num_classes(), 2);
  EXPECT_EQ(ds->channels(), 3);
  EXPECT_EQ(ds->label(0), 0);  // a_dog sorts first
  EXPECT_EQ(ds->label(3), 1);
  RawExample png = ds->load(0);
  EXPECT_EQ(png.image.pixels, rgb.pixels);  // PNG is lossless
  RawExample g3 = ds->load(1);
  ASSERT_EQ(g3.image.channels, 3);
  for (int c = 0; c < 3; ++c)
    EXPECT_TRUE(std::equal(grey.pixels.begin(), grey.pixels.end(), g3.image.plane(c)));
  RawExample jpg = ds->load(2);
  ASSERT_EQ(jpg.image.height, 12);
  ASSERT_EQ(jpg.image.width, 10);
  double err = 0;
  for (size_t i = 0; i < rgb.pixels.size(); ++i) err += std::abs(int(jpg.image.pixels[i]) - int(rgb.pixels[i]));
  EXPECT_LT(err / double(rgb.pixels.size()), 6.0);  // lossy but close at quality 100
  RawExample a = ds->load(3);
  EXPECT_TRUE(std::equal(a.image.pixels.begin(), a.image.pixels.end(), rgba.pixels.begin()));  // alpha dropped
}

TEST(ImageFolder, BadFilesEmptyFolderAndSkipBad) {
  auto dir = fresh_dir("folder_bad");
  fs::create_directories(dir / "c0");
  fs::create_directories(dir / "c1");
  Image im = pattern(3, 16, 16, 4);
  std::string jpg = encode_jpeg(im), png = encode_png(im);
  write_bytes(dir / "c0" / "good.jpg", jpg);
  write_bytes(dir / "c1" / "good.png", png);
  write_bytes(dir / "c1" / "trunc.jpg", jpg.substr(0, jpg.size() / 2));  // caught at open (no end marker)
  std::string e = error_of([&] { open_dataset(spec_for("imagefolder", dir)); });
  EXPECT_NE(e.find("trunc.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;

  // Corrupt in the middle (structure intact): caught lazily when decoded.
  std::string bad = jpg;
  for (size_t i = bad.size() / 3; i < bad.size() - 2; ++i) bad[i] = char(0xFF);
  write_bytes(dir / "c1" / "trunc.jpg", bad);
  std::string badpng = png;
  for (size_t i = 40; i < badpng.size() - 20; ++i) badpng[i] = char(i * 31);
  write_bytes(dir / "c1" / "zbad.png", badpng);
  auto ds = open_dataset(spec_for("imagefolder", dir));
  ASSERT_EQ(ds->size(), 4);
  e = error_of([&] { ds->load(2); });
  EXPECT_NE(e.find("trunc.jpg"), std::string::npos) << e;
  e = error_of([&] { ds->load(3); });
  EXPECT_NE(e.find("zbad.png"), std::string::npos) << e;
  EXPECT_NE(e.find("PNG"), std::string::npos) << e;

  auto skip = open_dataset(spec_for("imagefolder", dir, "train", true));
  RawExample r = skip->load(2);  // replaced by the next good index cyclically: 3 is bad too, so 0
  EXPECT_EQ(r.label, 0);
  EXPECT_EQ(skip->replaced(), 2);
  EXPECT_EQ(skip->load(1).label, 1);
  EXPECT_EQ(skip->replaced(), 2);

  // Structural errors skipped at open and counted.
  write_bytes(dir / "c1" / "short.png", png.substr(0, png.size() - 20));
  write_bytes(dir / "c1" / "fake.png", "this is not an image at all");
  e = error_of([&] { open_dataset(spec_for("imagefolder", dir)); });
  EXPECT_NE(e.find("fake.png"), std::string::npos) << e;
  auto skip2 = open_dataset(spec_for("imagefolder", dir, "train", true));
  EXPECT_EQ(skip2->skipped(), 2);
  EXPECT_EQ(skip2->size(), 4);
  EXPECT_NE(skip2->describe().find("2 skipped"), std::string::npos);

  fs::create_directories(dir / "c2_empty");
  e = error_of([&] { open_dataset(spec_for("imagefolder", dir, "train", true)); });
  EXPECT_NE(e.find("c2_empty"), std::string::npos) << e;
  EXPECT_NE(e.find("no "), std::string::npos) << e;
}

TEST(Digits, RealFileSplitIsStratifiedAndDisjoint) {
  if (!fs::exists(kDigitsCsv)) GTEST_SKIP() << "sklearn digits file absent";
  DataSpec s;
  s.kind = "digits";
  auto train = open_dataset(s);
  s.split = "test";
  auto test = open_dataset(s);
  EXPECT_EQ(train->size() + test->size(), 1797);
  EXPECT_EQ(test->size(), 359);  // sum over classes of round(0.2 * count)
  EXPECT_EQ(train->num_classes(), 10);
  auto im = train->get(0).image;
  EXPECT_EQ(im.sizes(), (std::vector<int64_t>{1, 8, 8}));
  int max_px = 0;
  for (int64_t i = 0; i < train->size(); ++i) max_px = std::max(max_px, train->get(i).image.max().item<int>());
  EXPECT_EQ(max_px, 255);  // 16 -> 255
  std::vector<int> per(10), all(10);
  for (int64_t i = 0; i < test->size(); ++i) ++per[static_cast<size_t>(test->label(i))];
  for (int64_t i = 0; i < train->size(); ++i) ++all[static_cast<size_t>(train->label(i))];
  for (int k = 0; k < 10; ++k) {
    all[k] += per[k];
    EXPECT_EQ(per[k], (all[k] * 2 + 5) / 10) << "class " << k;  // round(0.2 * class count)
  }
  // First line of the file: 0,0,5,13,9,1,0,0 ... label 0 -> belongs to exactly one split; check it's found.
  const std::vector<int> first = {0, 0, 5, 13, 9, 1, 0, 0};
  int found = 0;
  for (auto ds : {train, test})
    for (int64_t i = 0; i < ds->size(); ++i) {
      auto t = ds->get(i).image;
      bool same = true;
      for (int x = 0; x < 8 && same; ++x) same = t[0][0][x].item<int>() == (first[x] * 255 + 8) / 16;
      if (same && ds->label(i) == 0 && t[0][1][2].item<int>() == (13 * 255 + 8) / 16) ++found;
    }
  EXPECT_GE(found, 1);
}

TEST(Digits, MalformedRowsNameFileAndLine) {
  auto dir = fresh_dir("digits");
  std::string good;
  for (int i = 0; i < 64; ++i) good += std::to_string(i % 17) + ",";
  good += "3\n";
  write_bytes(dir / "d.csv", good + good + "1,2,3\n");
  DataSpec s = spec_for("digits", dir / "d.csv");
  std::string e = error_of([&] { open_dataset(s); });
  EXPECT_NE(e.find("d.csv:3"), std::string::npos) << e;
  EXPECT_NE(e.find("3 fields"), std::string::npos) << e;
  std::string bad = good;
  bad.replace(0, 1, "x");
  write_bytes(dir / "d.csv", good + bad);
  e = error_of([&] { open_dataset(s); });
  EXPECT_NE(e.find("d.csv:2"), std::string::npos) << e;
  write_bytes(dir / "d.csv", "17," + good.substr(2), true);  // gzip, pixel out of range
  e = error_of([&] { open_dataset(s); });
  EXPECT_NE(e.find("outside 0..16"), std::string::npos) << e;
}

TEST(Spec, ParsingAndUnknownKinds) {
  DataSpec s = parse_data_spec("cifar10:/data/c:test");
  EXPECT_EQ(s.kind, "cifar10");
  EXPECT_EQ(s.path, "/data/c");
  EXPECT_EQ(s.split, "test");
  s = parse_data_spec("fashion-mnist");
  EXPECT_EQ(s.path, "");
  EXPECT_EQ(s.split, "train");
  std::string e = error_of([] { parse_data_spec("svhn:/x", "--data"); });
  EXPECT_NE(e.find("--data"), std::string::npos);
  EXPECT_NE(e.find("svhn"), std::string::npos);
}

TEST(Split, HoldoutIsDeterministicDisjointAndComplete) {
  Split a = holdout_split(1000, 100, 7), b = holdout_split(1000, 100, 7), c = holdout_split(1000, 100, 8);
  EXPECT_EQ(a.holdout, b.holdout);
  EXPECT_NE(a.holdout, c.holdout);
  ASSERT_EQ(a.holdout.size(), 100u);
  ASSERT_EQ(a.train.size(), 900u);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  for (int64_t i : a.holdout) EXPECT_TRUE(all.insert(i).second);
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_THROW(holdout_split(10, 10, 0), nfscale::UserError);

  std::vector<int64_t> labels;
  for (int i = 0; i < 1000; ++i) labels.push_back(i < 700 ? 0 : (i < 900 ? 1 : 2));
  Split s = stratified_holdout_split(labels, 3, 101, 3);
  ASSERT_EQ(s.holdout.size(), 101u);
  std::vector<int> per(3);
  for (int64_t i : s.holdout) ++per[static_cast<size_t>(labels[static_cast<size_t>(i)])];
  EXPECT_EQ(per[0], 71);  // 70.7 -> 71 (largest remainder), 20.2 -> 20, 10.1 -> 10
  EXPECT_EQ(per[1], 20);
  EXPECT_EQ(per[2], 10);
}

TEST(FashionMnist, RealDebianFiles) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "not installed";
  auto train = open_dataset(parse_data_spec("fashion-mnist"));
  auto test = open_dataset(parse_data_spec("fashion-mnist::test"));
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(test->size(), 10000);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->get(0).image.sizes(), (std::vector<int64_t>{1, 28, 28}));
  std::vector<int> per(10);
  for (int64_t i = 0; i < test->size(); ++i) ++per[static_cast<size_t>(test->label(i))];
  for (int k = 0; k < 10; ++k) EXPECT_EQ(per[k], 1000);
}
