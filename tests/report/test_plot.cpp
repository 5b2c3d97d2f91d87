// test_plot.cpp - plots: tick choice and positions, SVG well-formedness and content, PNG pixels decoded by libpng,
// and the study's figure builders.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "nfscale/report/figures.h"
#include "nfscale/report/font5x7.h"
#include "nfscale/report/plot.h"
#include "nfscale/util/error.h"

namespace fs = std::filesystem;
using namespace nfscale::report;

namespace {

std::vector<double> labelled(const std::vector<Tick>& ticks) {
  std::vector<double> out;
  for (const auto& t : ticks)
    if (t.major()) out.push_back(t.value);
  return out;
}

// Checks that every element opened is closed in order (self-closing tags allowed); returns the first problem.
std::string tag_balance_problem(const std::string& xml) {
  std::vector<std::string> stack;
  std::regex tag(R"(<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*?(/?)>)");
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), tag); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    const std::string name = m[2];
    if (m[1] == "/") {
      if (stack.empty() || stack.back() != name) return "unexpected </" + name + ">";
      stack.pop_back();
    } else if (m[3] != "/") {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

struct DecodedPng {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Rgb at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

DecodedPng decode_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) throw std::runtime_error(img.message);
  img.format = PNG_FORMAT_RGB;
  DecodedPng out;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) throw std::runtime_error(img.message);
  return out;
}

Plot red_line_plot() {
  Plot p;
  p.title = "linear";
  p.x_scale = p.y_scale = Scale::Linear;
  p.x_range = std::make_pair(0.0, 10.0);
  p.y_range = std::make_pair(0.0, 10.0);
  Series s;
  s.name = "flat";
  s.points = {{0.0, 5.0}, {10.0, 5.0}};
  s.style.markers = false;
  s.style.color = Rgb{255, 0, 0};
  s.style.line_width = 3.0;
  p.series.push_back(s);
  p.legend = LegendPosition::None;
  return p;
}

TEST(Ticks, LogTicksOverThreeDecades) {
  auto t = log_ticks(1.0, 1000.0);
  EXPECT_EQ(labelled(t), (std::vector<double>{1, 10, 100, 1000}));
  EXPECT_EQ(t.size(), 4u + 3 * 8);  // 2..9 in each of three decades are minor
  EXPECT_EQ(t[1].value, 2.0);
  EXPECT_TRUE(t[1].label.empty());
  EXPECT_EQ(t.back().label, "1000");
}

TEST(Ticks, LogTicksUseOneTwoFiveWhenFewDecades) {
  auto t = log_ticks(0.3, 3.0);
  auto l = labelled(t);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_DOUBLE_EQ(l[0], 0.5);
  EXPECT_DOUBLE_EQ(l[1], 1.0);
  EXPECT_DOUBLE_EQ(l[2], 2.0);
  // Narrower still: every integer multiple is labelled.
  auto n = labelled(log_ticks(2.1, 4.5));
  EXPECT_EQ(n, (std::vector<double>{3, 4}));
}

TEST(Ticks, ManyDecadesAreThinnedAndFormattedCompactly) {
  auto l = labelled(log_ticks(1e3, 1e21));
  EXPECT_LE(l.size(), 10u);
  EXPECT_GE(l.size(), 4u);
  EXPECT_EQ(format_tick(1e18), "1e18");
  EXPECT_EQ(format_tick(2.5e-4), "2.5e-4");
  EXPECT_EQ(format_tick(0.25), "0.25");
  EXPECT_EQ(format_tick(1000), "1000");
  EXPECT_EQ(format_tick(0.1 * 3), "0.3");
}

TEST(Ticks, LinearTicksAreNice) {
  auto t = linear_ticks(-0.05, 1.05);
  EXPECT_EQ(labelled(t), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(t[3].label, "0.6");
  EXPECT_THROW(linear_ticks(1, 1), nfscale::UserError);
  EXPECT_THROW(log_ticks(0, 10), nfscale::UserError);
}

TEST(Ticks, LogAxisPositions) {
  AxisMap m{1.0, 1000.0, 100.0, 400.0, true};
  EXPECT_NEAR(m(1.0), 100.0, 1e-9);
  EXPECT_NEAR(m(10.0), 200.0, 1e-9);
  EXPECT_NEAR(m(100.0), 300.0, 1e-9);
  EXPECT_NEAR(m(std::sqrt(10.0)), 150.0, 1e-9);
  AxisMap y{0.1, 10.0, 500.0, 100.0, true};  // y axis: up is smaller pixels
  EXPECT_NEAR(y(1.0), 300.0, 1e-9);
  // On a real layout, tick 10 of a [1, 1000] axis sits a third of the way along the plot area.
  Plot p;
  p.x_range = std::make_pair(1.0, 1000.0);
  p.series.push_back({"s", {{1, 1}, {1000, 2}}, {}});
  SvgCanvas c(720, 480);
  auto L = layout(p, c, 720, 480);
  EXPECT_NEAR(L.x(10.0), L.px0 + (L.px1 - L.px0) / 3.0, 1e-9);
  EXPECT_EQ(labelled(L.x_ticks), (std::vector<double>{1, 10, 100, 1000}));
}

TEST(Svg, WellFormedAndContainsSeriesTicksAndEscapedText) {
  auto p = loss_vs_compute_figure({{"F0 <small>", {{1e15, 3.0}, {2e15, 2.8}, {4e15, 2.7}}},
                                   {"F1", {{3e15, 2.75}, {6e15, 2.6}, {1.2e16, 2.5}}}},
                                  PowerLawLine{30.0, -0.067, 1e15, 1.2e16});
  std::string svg = to_svg(p);
  EXPECT_EQ(tag_balance_problem(svg), "") << svg.substr(0, 400);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("F0 &lt;small&gt;"), std::string::npos);  // escaped, in the legend and the group title
  EXPECT_EQ(svg.find("<small>"), std::string::npos);
  EXPECT_NE(svg.find(">F1<"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the fit line is dashed
  EXPECT_NE(svg.find("fit: L = 30 * C^-0.067"), std::string::npos);
  EXPECT_NE(svg.find(">1e16<"), std::string::npos);  // a log tick label
  EXPECT_NE(svg.find("Held-out loss vs pre-training compute"), std::string::npos);
  // Three series groups, and one marker per data point (6) plus two legend markers.
  size_t groups = 0, circles = 0;
  for (size_t i = svg.find("<g class=\"series\""); i != std::string::npos; i = svg.find("<g class=\"series\"", i + 1))
    ++groups;
  for (size_t i = svg.find("<circle"); i != std::string::npos; i = svg.find("<circle", i + 1)) ++circles;
  EXPECT_EQ(groups, 3u);
  EXPECT_EQ(circles, 8u);
}

TEST(Svg, NonPositivePointsAreLeftOutOnLogAxes) {
  Plot p;
  p.series.push_back({"s", {{1, 1}, {10, 0.0}, {100, 10}, {-1, 5}}, {}});
  p.legend = LegendPosition::None;
  std::string svg = to_svg(p);
  size_t circles = 0;
  for (size_t i = svg.find("<circle"); i != std::string::npos; i = svg.find("<circle", i + 1)) ++circles;
  EXPECT_EQ(circles, 2u);
  EXPECT_FALSE(std::regex_search(svg, std::regex(R"([\s=",](-?nan|-?inf))"))) << "non-finite coordinate";
}

TEST(Png, DecodesToRequestedSizeWithTheLineWhereExpected) {
  const std::string path =
      (fs::temp_directory_path() / ("nfscale_plot_" + std::to_string(::getpid()) + ".png")).string();
  Plot p = red_line_plot();
  write_png(p, path, 640, 400);
  DecodedPng img = decode_png(path);
  fs::remove(path);
  ASSERT_EQ(img.width, 640);
  ASSERT_EQ(img.height, 400);
  RasterCanvas probe(640, 400);
  auto L = layout(p, probe, 640, 400);
  const int x = static_cast<int>(L.x(5.0)), y = static_cast<int>(L.y(5.0));
  EXPECT_EQ(img.at(x, y), (Rgb{255, 0, 0}));
  EXPECT_EQ(img.at(static_cast<int>(L.x(1.0)), y), (Rgb{255, 0, 0}));
  EXPECT_EQ(img.at(x, static_cast<int>(L.y(3.0))), (Rgb{255, 255, 255}));  // between grid lines: background
  EXPECT_EQ(img.at(2, 2), (Rgb{255, 255, 255}));
  // The frame is drawn: the left edge of the plot area is black half way up.
  EXPECT_EQ(img.at(static_cast<int>(std::lround(L.px0)), static_cast<int>(L.y(7.0))), (Rgb{0, 0, 0}));
  // The title text put dark pixels in the top band.
  int dark = 0;
  for (int yy = 0; yy < static_cast<int>(L.py0); ++yy)
    for (int xx = 0; xx < img.width; ++xx) dark += img.at(xx, yy).r < 100;
  EXPECT_GT(dark, 20);
}

TEST(Png, DashedLinesHaveGapsAndBadSizesAreRefused) {
  Plot p = red_line_plot();
  p.series[0].style.dashed = true;
  RasterCanvas c = rasterize(p, 640, 400);
  auto L = layout(p, c, 640, 400);
  const int y = static_cast<int>(L.y(5.0));
  int red = 0, other = 0;
  for (int x = static_cast<int>(L.px0) + 2; x < static_cast<int>(L.px1) - 2; ++x)
    (c.pixel(x, y) == Rgb{255, 0, 0} ? red : other)++;
  EXPECT_GT(red, other);  // 6 on, 4 off
  EXPECT_GT(other, 40);
  EXPECT_THROW(rasterize(p, 100, 50), nfscale::UserError);
}

TEST(Font, GlyphsHaveTheExpectedShape) {
  const uint8_t* one = glyph5x7('1');
  EXPECT_EQ(one[2], 0x7F);  // the full-height stem of '1'
  const uint8_t* space = glyph5x7(' ');
  for (int i = 0; i < kGlyphWidth; ++i) EXPECT_EQ(space[i], 0);
  EXPECT_EQ(glyph5x7('\n'), glyph5x7('?'));
  RasterCanvas c(40, 20);
  c.text(2, 10, "I", 8, Anchor::Start, Rgb{0, 0, 0}, false);
  // 'I' at scale 1: its stem is column 2 of the glyph, rows 0..6, centred vertically on y=10.
  int stem = 0;
  for (int y = 0; y < 20; ++y) stem += c.pixel(4, y) == Rgb{0, 0, 0};
  EXPECT_EQ(stem, 7);
}

TEST(Figures, OptimalLrUsesTheGridValuesAsTicks) {
  auto p = optimal_lr_figure({{"F0", {{0.25, 1.6}, {1, 1.6}, {4, 0.8}, {8, 0.4}}},
                              {"F1", {{0.25, 1.6}, {1, 0.8}, {4, 0.4}, {8, 0.2}}}});
  EXPECT_EQ(p.x_ticks, (std::vector<double>{0.25, 1, 4, 8}));
  EXPECT_EQ(p.y_ticks, (std::vector<double>{0.2, 0.4, 0.8, 1.6}));
  std::string svg = to_svg(p);
  EXPECT_NE(svg.find(">0.25<"), std::string::npos);
  EXPECT_NE(svg.find(">1.6<"), std::string::npos);
  EXPECT_EQ(tag_balance_problem(svg), "");
}

TEST(Figures, FinetuneReferencesAreMarkersOnly) {
  auto p = finetune_error_figure({{"F3", {{2e16, 0.2}, {1e16, 0.25}}}}, {{"ViT-g/14", {{3e16, 0.098}}}});
  ASSERT_EQ(p.series.size(), 2u);
  EXPECT_TRUE(p.series[0].style.lines);
  EXPECT_DOUBLE_EQ(p.series[0].points[0].x, 1e16);  // sorted by compute
  EXPECT_FALSE(p.series[1].style.lines);
  EXPECT_THROW(loss_vs_compute_figure({}, PowerLawLine{1, -0.1, 10, 1}), nfscale::UserError);
}

}  // namespace
