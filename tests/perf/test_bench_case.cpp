// test_bench_case.cpp - benchmark cases, step settings and summary statistics: parsing, failure paths, formulas.
#include <gtest/gtest.h>

#include "nfscale/perf/bench_case.h"
#include "nfscale/perf/stats.h"
#include "nfscale/util/error.h"

namespace nfscale::perf {
namespace {

TEST(BenchCase, ParsesModelResolutionBatch) {
  const BenchCase c = parse_case("mini-F3:32:128");
  EXPECT_EQ(c.model, "mini-F3");
  EXPECT_EQ(c.res, 32);
  EXPECT_EQ(c.batch, 128);
  EXPECT_EQ(parse_case("F0+:64:2").model, "F0+");
}

TEST(BenchCase, RejectsMalformedCases) {
  for (const char* bad : {"mini-F3:32", "mini-F3", "mini-F3:3x:128", "mini-F3:32:", "mini-F3::128", "mini-F3:32:0",
                          "mini-F3:32:-5", "no-such-model:32:8", "mini-F3:8:4", "mini-F3:32:99999999999999"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_case(bad), UserError);
  }
  try {
    parse_case("mini-F3:3x:128");
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--case 'mini-F3:3x:128'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("MODEL:RES:BATCH"), std::string::npos) << e.what();
  }
}

TEST(StepSettings, PrecisionSelectsCandidates) {
  auto names = [](const std::string& p) {
    std::vector<std::string> out;
    for (const auto& s : candidate_settings(p)) out.push_back(s.str());
    return out;
  };
  EXPECT_EQ(names("best"), (std::vector<std::string>{"fp32/nchw", "fp32/channels_last", "bf16/nchw",
                                                     "bf16/channels_last"}));
  EXPECT_EQ(names("fp32"), (std::vector<std::string>{"fp32/nchw", "fp32/channels_last"}));
  EXPECT_EQ(names("bf16"), (std::vector<std::string>{"bf16/nchw", "bf16/channels_last"}));
  EXPECT_EQ(names("bf16/nchw"), (std::vector<std::string>{"bf16/nchw"}));
  for (const char* bad : {"fp16", "", "fp32/", "bf16/channels_first", "BEST"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(candidate_settings(bad), UserError);
  }
}

TEST(Stats, MedianAndSpread) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2.0);
  EXPECT_DOUBLE_EQ(median({3, 1, 2, 10}), 2.5);
  const Spread s = spread({3, 1, 2, 10});
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.max, 10.0);
  const Spread e = spread({});
  EXPECT_EQ(e.median, 0.0);
  EXPECT_EQ(e.min, 0.0);
  EXPECT_EQ(e.max, 0.0);
  EXPECT_GT(maxrss_kb(), 0);
}

}  // namespace
}  // namespace nfscale::perf
