// test_loader_shards.cpp - the loader's data-parallel shards: W sharded loaders together deliver exactly the
// batches of one unsharded loader (batch k of shard r = global batch k x W + r, bit for bit), so every example is
// seen once per epoch in total, positions stay global, and a resume with another number of shards continues the
// same stream.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "nfscale/data/loader.h"
#include "nfscale/data/memory_dataset.h"

namespace nfscale::data {
namespace {

constexpr int64_t kN = 24, kSide = 8;

// kN grey 8x8 images; the label of example i is i, so a batch's labels name its examples.
std::shared_ptr<Dataset> labelled_set() {
  std::vector<uint8_t> px(static_cast<size_t>(kN * kSide * kSide));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 37) % 251);
  std::vector<int64_t> labels(kN);
  for (int64_t i = 0; i < kN; ++i) labels[static_cast<size_t>(i)] = i;
  return std::make_shared<MemoryDataset>(px, labels, 1, kSide, kSide, kN, "labelled", 0);
}

LoaderOptions options(int64_t shards, int64_t index) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 9;
  o.threads = 2;
  o.resolution = kSide;
  o.shard_count = shards;
  o.shard_index = index;
  return o;
}

TEST(LoaderShards, ShardsDealTheGlobalBatchesRoundRobinAndSeeEachExampleOncePerEpoch) {
  auto set = labelled_set();
  Loader global(set, {}, options(1, 0));
  std::vector<Batch> g;
  for (int k = 0; k < 12; ++k) g.push_back(global.next());  // two epochs of 6 batches
  for (int64_t W : {2, 3}) {
    std::map<int64_t, int> seen_epoch0;
    for (int64_t r = 0; r < W; ++r) {
      Loader shard(set, {}, options(W, r));
      for (int64_t k = 0; k < 12 / W; ++k) {
        const Batch b = shard.next();
        const Batch& ref = g[static_cast<size_t>(k * W + r)];
        EXPECT_EQ(b.position, ref.position);
        EXPECT_TRUE(torch::equal(b.images, ref.images)) << "W=" << W << " r=" << r << " k=" << k;
        EXPECT_TRUE(torch::equal(b.labels, ref.labels));
        EXPECT_EQ(shard.position(), (k + 1) * W * 4) << "positions are global";
        if (b.position < kN)
          for (int64_t i = 0; i < b.size(); ++i) seen_epoch0[b.labels[i].item<int64_t>()] += 1;
      }
    }
    ASSERT_EQ(seen_epoch0.size(), size_t(kN)) << "W=" << W;
    for (auto& [example, count] : seen_epoch0) EXPECT_EQ(count, 1) << "example " << example << " W=" << W;
  }
}

TEST(LoaderShards, ResumingWithAnotherShardCountContinuesTheSameStream) {
  auto set = labelled_set();
  Loader global(set, {}, options(1, 0));
  std::vector<Batch> g;
  for (int k = 0; k < 8; ++k) g.push_back(global.next());
  // Two shards for two rounds (global batches 0-3, positions 0..15), then three shards from position 16: their
  // first round is global batches 4, 5, 6.
  Loader s0(set, {}, options(2, 0)), s1(set, {}, options(2, 1));
  s0.next(), s1.next(), s0.next(), s1.next();
  ASSERT_EQ(s0.position(), 16);
  for (int64_t r = 0; r < 3; ++r) {
    Loader t(set, {}, options(3, r), s0.position());
    const Batch b = t.next();
    EXPECT_TRUE(torch::equal(b.images, g[static_cast<size_t>(4 + r)].images)) << "shard " << r;
    EXPECT_EQ(t.position(), 16 + 12);
  }
}

TEST(LoaderShards, BadShardIndexIsRefusedWithTheOptionName) {
  auto set = labelled_set();
  try {
    Loader l(set, {}, options(2, 2));
    FAIL() << "accepted shard_index 2 of 2";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("loader.shard_index"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::data
