// test_op_profile.cpp - profile_ops counts every call of an op, keeps self <= total, and attributes time spent in
// nested ops to the inner op (self time of the outer excludes it); format_op_table lists the rows asked for.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nfscale/util/op_profile.h"

namespace nfscale {
namespace {

const OpStat* find(const std::vector<OpStat>& stats, const std::string& name) {
  for (const auto& s : stats)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(OpProfile, CountsCallsAndSeparatesSelfFromTotal) {
  auto a = torch::randn({256, 256}), b = torch::randn({256, 256});
  const auto stats = profile_ops([&] {
    for (int i = 0; i < 7; ++i) a = torch::tanh(torch::mm(a, b));
    auto c = torch::matmul(a, b);  // matmul calls mm inside: counted under both names
  });
  const OpStat* mm = find(stats, "aten::mm");
  const OpStat* tanh = find(stats, "aten::tanh");
  const OpStat* matmul = find(stats, "aten::matmul");
  ASSERT_NE(mm, nullptr);
  ASSERT_NE(tanh, nullptr);
  ASSERT_NE(matmul, nullptr);
  EXPECT_EQ(mm->calls, 8);
  EXPECT_EQ(tanh->calls, 7);
  EXPECT_EQ(matmul->calls, 1);
  for (const auto& s : stats) {
    EXPECT_GE(s.self_us, -1e-6) << s.name;
    EXPECT_LE(s.self_us, s.total_us + 1e-6) << s.name;
  }
  // matmul's own work is tiny next to the 256^3 mm it calls.
  EXPECT_LT(matmul->self_us, 0.5 * matmul->total_us);
  for (size_t i = 1; i < stats.size(); ++i) EXPECT_GE(stats[i - 1].self_us, stats[i].self_us);
}

TEST(OpProfile, TableHasTheRequestedRows) {
  const auto stats = profile_ops([] { auto x = torch::ones({8}) + torch::ones({8}); });
  const std::string table = format_op_table(stats, 1);
  EXPECT_NE(table.find("self ms"), std::string::npos);
  EXPECT_NE(table.find(stats.front().name.substr(0, 40)), std::string::npos);
  // header + 1 row + summary line
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 3);
}

// By shapes: calls of one op with different input shapes are separate rows, each named with its outermost
// enclosing op; the calls still add up.
TEST(OpProfile, ByShapesSplitsCallsByInputShapeAndEnclosingOp) {
  auto a = torch::randn({64, 32}), b = torch::randn({32, 16}), c = torch::randn({16, 8});
  const auto stats = profile_ops(
      [&] {
        for (int i = 0; i < 3; ++i) auto y = torch::mm(a, b);
        auto z = torch::mm(torch::mm(a, b), c);
        auto m = torch::matmul(a, b);  // matmul -> mm: the mm row says "in aten::matmul"
      },
      /*by_shapes=*/true);
  const OpStat* ab = find(stats, "aten::mm [64,32] [32,16]");
  const OpStat* bc = find(stats, "aten::mm [64,16] [16,8]");
  const OpStat* in_matmul = find(stats, "aten::mm [64,32] [32,16] in aten::matmul");
  ASSERT_NE(ab, nullptr);
  ASSERT_NE(bc, nullptr);
  ASSERT_NE(in_matmul, nullptr);
  EXPECT_EQ(ab->calls, 4);
  EXPECT_EQ(bc->calls, 1);
  EXPECT_EQ(in_matmul->calls, 1);
  EXPECT_EQ(find(stats, "aten::mm"), nullptr);  // no row without its shapes
  const std::string table = format_op_table(stats, stats.size());
  EXPECT_NE(table.find("aten::mm [64,32] [32,16] in aten::matmul"), std::string::npos) << table;
}

TEST(OpProfile, ExceptionLeavesTheProfilerOff) {
  EXPECT_THROW(profile_ops([] { throw std::runtime_error("boom"); }), std::runtime_error);
  // A second profile must start cleanly (the first one was switched off).
  const auto stats = profile_ops([] { auto x = torch::zeros({4}).add(1); });
  EXPECT_NE(find(stats, "aten::add"), nullptr);
}

}  // namespace
}  // namespace nfscale
