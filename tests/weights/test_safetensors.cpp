// test_safetensors.cpp - the safetensors reader/writer: bit-exact round trips of every dtype, the byte layout, the
// timm fixtures, and a named error for each kind of bad file (truncated, lying offsets, unknown dtype, ...).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "nfscale/util/error.h"
#include "nfscale/weights/safetensors.h"
#include "weights_test_util.h"

namespace nfscale::weights {
namespace {
using namespace testing;

TEST(Safetensors, RoundTripEveryDtypeBitExact) {
  const std::string dir = fresh_dir("roundtrip");
  torch::manual_seed(3);
  std::vector<NamedTensor> in = {
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2, 3, 5}, torch::kDouble)},
      {"f16", torch::randn({7}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::randint(-1000, 1000, {5}, torch::kLong)},
      {"i32", torch::randint(-1000, 1000, {5}, torch::kInt)},
      {"i16", torch::randint(-1000, 1000, {3}, torch::kShort)},
      {"i8", torch::randint(-100, 100, {3}, torch::kChar)},
      {"u8", torch::randint(0, 255, {3}, torch::kByte)},
      {"bool", torch::rand({4}) > 0.5},
      {"scalar", torch::tensor(2.5f).reshape({})},
      {"empty", torch::empty({0, 3})},
      {"strided", torch::randn({4, 6}).t()},  // non-contiguous input is written in logical order
  };
  in[0].tensor[0][0] = std::numeric_limits<float>::quiet_NaN();  // NaN payloads survive too
  const std::string path = dir + "/t.safetensors";
  write_safetensors(path, in, {{"format", "pt"}, {"note", "hello"}});
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("note"), "hello");
  ASSERT_EQ(f.names().size(), in.size());
  for (const auto& nt : in) {
    auto got = f.tensor(nt.name);
    EXPECT_EQ(got.sizes(), nt.tensor.sizes()) << nt.name;
    EXPECT_TRUE(same_bits(got, nt.tensor)) << nt.name;
  }
  // Writing what was read gives the same bytes.
  const std::string again = dir + "/again.safetensors";
  write_safetensors(again, f.read_all().tensors, f.metadata());
  EXPECT_EQ(slurp(again), slurp(path));
}

TEST(Safetensors, ByteLayoutFollowsTheFormat) {
  auto t = torch::tensor({1.0f, -2.0f, 3.5f});
  const std::string bytes = safetensors_bytes({{"w", t}}, {{"k", "v"}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);                     // header padded to 8 bytes
  ASSERT_EQ(bytes.size(), 8 + n + 12);      // 3 x f32
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json::array({0, 12}));
  EXPECT_EQ(header["__metadata__"]["k"], "v");
  float back[3];
  std::memcpy(back, bytes.data() + 8 + n, 12);  // raw little-endian data
  EXPECT_EQ(back[1], -2.0f);
}

TEST(Safetensors, TensorsOutliveTheFileObjectAndAreWritable) {
  const std::string dir = fresh_dir("outlive");
  const std::string path = dir + "/a.safetensors";
  write_safetensors(path, {{"a", torch::arange(10, torch::kFloat)}});
  torch::Tensor a;
  {
    SafetensorsFile f(path);
    a = f.tensor("a");
  }
  EXPECT_EQ(a[9].item<float>(), 9.0f);
  a.add_(1);  // private mapping: the file is not changed
  EXPECT_EQ(SafetensorsFile(path).tensor("a")[9].item<float>(), 9.0f);
}

TEST(Safetensors, UnalignedOffsetsAreCopied) {
  // A valid file whose f32 tensor starts at an odd byte (the format does not require alignment).
  const std::string dir = fresh_dir("unaligned");
  std::string data(1, '\x07');
  float v[2] = {1.5f, -4.0f};
  data.append(reinterpret_cast<const char*>(v), 8);
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  spit(dir + "/u.safetensors", raw_safetensors(header, data));
  SafetensorsFile f(dir + "/u.safetensors");
  EXPECT_EQ(f.tensor("f")[1].item<float>(), -4.0f);
  EXPECT_EQ(f.tensor("b")[0].item<uint8_t>(), 7);
}

TEST(Safetensors, ReadsTheTimmFixture) {
  const std::string dir = timm_fixture("nfnet-mini-f0");
  if (dir.empty()) GTEST_SKIP() << "shared/fixtures/timm not found beside the source tree (NFSCALE_SOURCE_DIR/..)";
  SafetensorsFile f(dir + "/io.safetensors");
  EXPECT_EQ(f.tensor("input").sizes(), (std::vector<int64_t>{4, 1, 32, 32}));
  EXPECT_EQ(f.tensor("logits").sizes(), (std::vector<int64_t>{4, 10}));
  SafetensorsFile w(dir + "/weights.safetensors");
  EXPECT_EQ(w.metadata().at("nfscale_model"), "mini-F0");
  EXPECT_EQ(w.tensor("stem.conv1.gain").sizes(), (std::vector<int64_t>{8, 1, 1, 1}));
}

// ---- bad input: each gives a UserError naming the file and what is wrong ------------------------------------------

class BadSafetensors : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_dir("bad"); }
  std::string write_raw(const std::string& bytes) {
    const std::string p = dir_ + "/bad.safetensors";
    spit(p, bytes);
    return p;
  }
  std::string open_error(const std::string& bytes) {
    const std::string p = write_raw(bytes);
    return error_of([&] { SafetensorsFile f(p); });
  }
  std::string dir_;
};

TEST_F(BadSafetensors, Truncated) {
  const std::string good = safetensors_bytes({{"w", torch::randn({16})}});
  EXPECT_NE(open_error(good.substr(0, 5)).find("truncated"), std::string::npos);
  EXPECT_NE(open_error(good.substr(0, 20)).find("truncated"), std::string::npos);  // inside the header
  const std::string msg = open_error(good.substr(0, good.size() - 4));            // inside the data
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
}

TEST_F(BadSafetensors, HeaderLiesAboutOffsets) {
  const std::string data(16, '\0');
  // Length disagrees with dtype x shape.
  auto msg = open_error(raw_safetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", data));
  EXPECT_NE(msg.find("lies"), std::string::npos) << msg;
  // Overlapping tensors.
  msg = open_error(raw_safetensors(
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      data));
  EXPECT_NE(msg.find("overlaps"), std::string::npos) << msg;
  // A gap / bytes nobody owns.
  msg = open_error(raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data));
  EXPECT_NE(msg.find("gap"), std::string::npos) << msg;
  msg = open_error(raw_safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data));
  EXPECT_NE(msg.find("no tensor owns"), std::string::npos) << msg;
  // Header length larger than the file.
  msg = open_error(raw_safetensors(R"({})", "").replace(0, 1, "\xff"));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(BadSafetensors, UnknownDtype) {
  const auto msg =
      open_error(raw_safetensors(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", std::string(4, '\0')));
  EXPECT_NE(msg.find("unknown dtype 'F8_E4M3'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
}

TEST_F(BadSafetensors, MalformedHeader) {
  EXPECT_NE(open_error(raw_safetensors("{not json", "")).find("not JSON"), std::string::npos);
  EXPECT_NE(open_error(raw_safetensors(R"({"w":{"dtype":"F32"}})", "")).find("needs dtype, shape and data_offsets"),
            std::string::npos);
  EXPECT_NE(open_error(raw_safetensors(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""))
                .find("negative"),
            std::string::npos);
}

TEST_F(BadSafetensors, MissingTensorListsWhatIsThere) {
  const std::string p = dir_ + "/ok.safetensors";
  write_safetensors(p, {{"a", torch::zeros({1})}, {"b", torch::zeros({1})}});
  const auto msg = error_of([&] { SafetensorsFile(p).tensor("c"); });
  EXPECT_NE(msg.find("no tensor 'c'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a, b"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { SafetensorsFile(dir_ + "/absent.safetensors"); }).find("cannot open"), std::string::npos);
}

TEST_F(BadSafetensors, FailedWriteLeavesTheOldFileAndNoTemp) {
  const std::string p = dir_ + "/keep.safetensors";
  write_safetensors(p, {{"a", torch::ones({2})}});
  const std::string before = slurp(p);
  EXPECT_NE(error_of([&] { write_safetensors(p, {{"a", torch::ones({2})}, {"a", torch::ones({2})}}); })
                .find("appears twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { write_safetensors(p, {{"c", torch::ones({2}, torch::kComplexFloat)}}); })
                .find("cannot be stored"),
            std::string::npos);
  EXPECT_EQ(slurp(p), before);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.path().filename() != "bad.safetensors";
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace nfscale::weights
