// test_ticks.cpp - axis ticks: which values get labels on log and linear axes, and how short the labels are.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "nfscale/report/ticks.h"
#include "nfscale/util/error.h"

using namespace nfscale::report;

namespace {

std::vector<double> labelled(const std::vector<Tick>& ticks) {
  std::vector<double> out;
  for (const auto& t : ticks)
    if (t.major()) out.push_back(t.value);
  return out;
}
std::vector<std::string> labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> out;
  for (const auto& t : ticks)
    if (t.major()) out.push_back(t.label);
  return out;
}

TEST(Ticks, FormatIsShort) {
  EXPECT_EQ(format_tick(1e13), "1e13");
  EXPECT_EQ(format_tick(2e13), "2e13");
  EXPECT_EQ(format_tick(0.5), "0.5");
  EXPECT_EQ(format_tick(1.6), "1.6");
  EXPECT_EQ(format_tick(0.25), "0.25");
  EXPECT_EQ(format_tick(1000), "1000");
  EXPECT_EQ(format_tick(1e4), "1e4");
  EXPECT_EQ(format_tick(2.5e-4), "2.5e-4");
  EXPECT_EQ(format_tick(0.1 * 3), "0.3");
  EXPECT_EQ(format_tick(-0.0), "0");
  EXPECT_EQ(format_tick(99999.7), "1e5");
  EXPECT_EQ(format_tick(1.73272), "1.733");  // never more than 4 significant digits
  EXPECT_TRUE(is_round_tick(0.25));
  EXPECT_TRUE(is_round_tick(2e13));
  EXPECT_FALSE(is_round_tick(1.73272));
  EXPECT_FALSE(is_round_tick(NAN));
}

TEST(Ticks, PowersOfTenOverManyDecades) {
  auto t = log_ticks(1.0, 1e4);
  EXPECT_EQ(labels(t), (std::vector<std::string>{"1", "10", "100", "1000", "1e4"}));
  EXPECT_EQ(t.size(), 5u + 4 * 8);  // 2..9 in each of four decades are minor
  EXPECT_EQ(t[1].value, 2.0);
  EXPECT_FALSE(t[1].major());
  // 18 decades: every n-th power, at most 8 labels, no minor ticks above 8 decades.
  auto many = log_ticks(1e3, 1e21);
  const auto l = labelled(many);
  EXPECT_GE(l.size(), 4u);
  EXPECT_LE(l.size(), 8u);
  EXPECT_EQ(l.size(), many.size());
}

TEST(Ticks, OneTwoFiveOnTwoDecades) {
  EXPECT_EQ(labels(log_ticks(1e13, 1e15)),
            (std::vector<std::string>{"1e13", "2e13", "5e13", "1e14", "2e14", "5e14", "1e15"}));
  // 2.6 decades: 1-2-5; 3.5 decades: 1-3-10.
  EXPECT_EQ(labels(log_ticks(2.0, 900.0)), (std::vector<std::string>{"2", "5", "10", "20", "50", "100", "200", "500"}));
  EXPECT_EQ(labels(log_ticks(2.0, 6000.0)), (std::vector<std::string>{"3", "10", "30", "100", "300", "1000", "3000"}));
  // 1.4 decades: 1-2-3-5.
  EXPECT_EQ(labels(log_ticks(0.9e13, 2.2e14)), (std::vector<std::string>{"1e13", "2e13", "3e13", "5e13", "1e14", "2e14"}));
}

TEST(Ticks, DenserMultiplesOnShortSpans) {
  EXPECT_EQ(labels(log_ticks(0.3, 3.0)), (std::vector<std::string>{"0.3", "0.5", "1", "2", "3"}));
  EXPECT_EQ(labels(log_ticks(1.5, 9.5)), (std::vector<std::string>{"2", "3", "4", "6", "8"}));
  EXPECT_EQ(labels(log_ticks(0.55, 3.4)), (std::vector<std::string>{"0.6", "0.8", "1", "2", "3"}));
  EXPECT_EQ(labels(log_ticks(0.28, 0.72)), (std::vector<std::string>{"0.3", "0.4", "0.5", "0.6", "0.7"}));
  // Too short for three 1..9 multiples: nice linear steps.
  EXPECT_EQ(labels(log_ticks(2.1, 4.5)), (std::vector<std::string>{"2.5", "3", "3.5", "4", "4.5"}));
  EXPECT_EQ(labels(log_ticks(1.705, 1.795)), (std::vector<std::string>{"1.72", "1.74", "1.76", "1.78"}));
}

// Over many random log ranges: 2..10 labels (at least 3 from half a decade on), all short, each label equal to
// its value, inside the range, increasing, and (log levels, from half a decade on) at least 1/9 of the span apart.
TEST(Ticks, LogTicksPropertiesOverRandomRanges) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> start(-20, 20), span(0.02, 20);
  for (int i = 0; i < 3000; ++i) {
    const double lo = std::pow(10.0, start(rng)), s = span(rng), hi = lo * std::pow(10.0, s);
    const auto t = log_ticks(lo, hi);
    const auto l = labelled(t);
    SCOPED_TRACE("range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    ASSERT_GE(l.size(), s >= 0.5 ? 3u : 2u);
    ASSERT_LE(l.size(), 10u);
    for (size_t j = 0; j < t.size(); ++j) {
      ASSERT_GE(t[j].value, lo * (1 - 1e-9));
      ASSERT_LE(t[j].value, hi * (1 + 1e-9));
      if (j) {
        ASSERT_GT(t[j].value, t[j - 1].value);
      }
      if (!t[j].major()) continue;
      ASSERT_LE(t[j].label.size(), 9u) << t[j].label;  // e.g. 1.125e-12 on a very short span
      ASSERT_DOUBLE_EQ(std::strtod(t[j].label.c_str(), nullptr), t[j].value) << t[j].label;
    }
    // Labels from the log levels (integer multiples of powers of ten; not the linear fallback's 1.25e10).
    const bool log_level = std::all_of(l.begin(), l.end(), [](double v) {
      const double m = v / std::pow(10.0, std::floor(std::log10(v) + 1e-12));
      return std::abs(m - std::round(m)) < 1e-9;
    });
    if (s < 0.5 || !log_level) continue;
    for (size_t j = 1; j < l.size(); ++j) ASSERT_GE(std::log10(l[j] / l[j - 1]), s / 9.01) << l[j - 1] << " " << l[j];
  }
}

TEST(Ticks, LinearTicksAreNice) {
  auto t = linear_ticks(-0.05, 1.05);
  EXPECT_EQ(labelled(t), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_EQ(t[3].label, "0.6");
  EXPECT_EQ(labels(linear_ticks(-0.031, 0.052)), (std::vector<std::string>{"-0.03", "-0.02", "-0.01", "0", "0.01", "0.02", "0.03", "0.04", "0.05"}));
  EXPECT_EQ(labels(linear_ticks(0, 2.5e13)), (std::vector<std::string>{"0", "5e12", "1e13", "1.5e13", "2e13", "2.5e13"}));
  // A residual axis: a step of 0.1 (nearest to 0.62 / 6), not 0.2 with only three labels.
  EXPECT_EQ(labels(linear_ticks(-0.24, 0.38)), (std::vector<std::string>{"-0.2", "-0.1", "0", "0.1", "0.2", "0.3"}));
  // Any range: 4 to 9 ticks, each equal to its short label.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> exponent(-6, 9), unit(-1, 1);
  for (int i = 0; i < 2000; ++i) {
    const double span = std::pow(10.0, exponent(rng)), lo = unit(rng) * 3 * span;
    const auto t = linear_ticks(lo, lo + span);
    ASSERT_GE(t.size(), 4u) << lo << " + " << span;
    ASSERT_LE(t.size(), 9u) << lo << " + " << span;
    for (const auto& k : t) {
      ASSERT_EQ(std::strtod(k.label.c_str(), nullptr), k.value) << k.label;
      ASSERT_LE(k.label.size(), 9u) << k.label;
    }
  }
  EXPECT_THROW(linear_ticks(1, 1), nfscale::UserError);
  EXPECT_THROW(linear_ticks(0, INFINITY), nfscale::UserError);
  EXPECT_THROW(log_ticks(0, 10), nfscale::UserError);
  EXPECT_THROW(log_ticks(10, 1), nfscale::UserError);
}

}  // namespace
