// test_plot.cpp - plots: layout and axis positions, SVG content (hover titles, bands, error bars), PNG pixels
// decoded by libpng (antialiased lines, real text), PDF structure, the font, and bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>

#include "nfscale/report/plot.h"
#include "nfscale/report/text_metrics.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/report/svg_canvas.h"
#include "nfscale/util/error.h"
#include "report_test_util.h"

namespace fs = std::filesystem;
using namespace nfscale::report;
using namespace nfscale::report::testing;

namespace {

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

bool reddish(Rgb c) { return c.r > 200 && c.g < 90 && c.b < 90; }

TEST(Font, DejaVuSansIsUsedAndMeasuredProportionally) {
  EXPECT_EQ(resolved_plot_font(), "DejaVu Sans") << "install fonts-dejavu-core (scripts/setup.sh)";
  const TextExtent m = measure_text("MMMM", 20), i = measure_text("iiii", 20);
  EXPECT_GT(m.width, 2 * i.width);                                       // proportional, not a fixed-cell font
  EXPECT_NEAR(measure_text("1e13", 24).width, 2 * measure_text("1e13", 12).width, 0.02 * measure_text("1e13", 24).width);
  EXPECT_NEAR(m.height, 1.164 * 20, 0.5);  // DejaVu's line box: ascent 0.928 + descent 0.236 em
  EXPECT_GT(m.baseline, 0.5 * m.height);
  EXPECT_EQ(measure_text("", 12).width, 0.0);
  EXPECT_EQ(valid_utf8("ok \xff"), "ok \xef\xbf\xbd");  // invalid byte -> U+FFFD
}

TEST(Layout, LogAxisPositionsAndTicks) {
  AxisMap m{1.0, 1000.0, 100.0, 400.0, true};
  EXPECT_NEAR(m(1.0), 100.0, 1e-9);
  EXPECT_NEAR(m(10.0), 200.0, 1e-9);
  EXPECT_NEAR(m(std::sqrt(10.0)), 150.0, 1e-9);
  AxisMap y{0.1, 10.0, 500.0, 100.0, true};  // y axis: up is smaller pixels
  EXPECT_NEAR(y(1.0), 300.0, 1e-9);
  Plot p;
  p.x_range = std::make_pair(1.0, 1e4);
  p.series.push_back({"s", {{1, 1}, {1e4, 2}}, {}});
  SvgCanvas c(720, 480);
  auto L = layout(p, c, 720, 480);
  EXPECT_NEAR(L.x(10.0), L.px0 + (L.px1 - L.px0) / 4.0, 1e-9);
  std::vector<double> major;
  for (const auto& t : L.x_ticks)
    if (t.major()) major.push_back(t.value);
  EXPECT_EQ(major, (std::vector<double>{1, 10, 100, 1000, 1e4}));
}

// On a narrow figure the 1-2-5 labels of a compute axis would collide; layout drops every other one (keeping
// powers of ten) until they are apart.
TEST(Layout, CrowdedLabelsAreThinned) {
  Plot p;
  p.x_range = std::make_pair(1e13, 1e15);
  p.series.push_back({"s", {{1e13, 1}, {1e15, 2}}, {}});
  SvgCanvas c(240, 480);
  auto L = layout(p, c, 240, 480);
  std::vector<const Tick*> major;
  for (const auto& t : L.x_ticks)
    if (t.major()) major.push_back(&t);
  ASSERT_GE(major.size(), 2u);
  EXPECT_LT(major.size(), 7u);
  for (size_t j = 1; j < major.size(); ++j) {
    const double gap = L.x(major[j]->value) - L.x(major[j - 1]->value);
    EXPECT_GT(gap, (c.text_width(major[j]->label, 11.5 * L.scale) + c.text_width(major[j - 1]->label, 11.5 * L.scale)) / 2)
        << major[j - 1]->label << " " << major[j]->label;
  }
  EXPECT_EQ(major.front()->label, "1e13");
  // The wide figure keeps all seven.
  SvgCanvas wide(900, 600);
  size_t n = 0;
  for (const auto& t : layout(p, wide, 900, 600).x_ticks) n += t.major();
  EXPECT_EQ(n, 7u);
}

TEST(Svg, WellFormedWithHoverTitlesOnEveryMarker) {
  Plot p;
  p.title = "t";
  Series a{"F0 <small>", {{1e15, 3.0, "F0, 1 epoch, LR 0.8: loss 3 & more"}, {2e15, 2.8}, {4e15, 2.7}}, {}};
  Series b{"F1", {{3e15, 2.75}, {6e15, 2.6}}, {}};
  p.series = {a, b};
  const std::string svg = to_svg(p);
  EXPECT_EQ(tag_balance_problem(svg), "") << svg.substr(0, 400);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(svg, "<circle class=\"pt\""), 5u + 2);  // 5 points + 2 legend markers
  // Every data marker has a title: the given tooltip (escaped) or "<series>: x = .., y = ..".
  EXPECT_EQ(count(svg, "</title></circle>"), 5u);
  EXPECT_NE(svg.find("<title>F0, 1 epoch, LR 0.8: loss 3 &amp; more</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>F0 &lt;small&gt;: x = 2e15, y = 2.8</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>F1: x = 6e15, y = 2.6</title>"), std::string::npos);
  EXPECT_EQ(svg.find("<small>"), std::string::npos);
  EXPECT_NE(svg.find("font-family=\"DejaVu Sans"), std::string::npos);
  EXPECT_EQ(count(svg, "<g class=\"series\">"), 2u);
}

TEST(Svg, BandsAndErrorBars) {
  Plot p;
  p.legend = LegendPosition::None;
  Series band{"fit", {{1, 2, 1.5, 2.5}, {10, 3, 2.0, 4.0}, {100, 4, 3.0, 5.5}}, {}};
  band.style.markers = false;
  p.series.push_back(band);
  std::string svg = to_svg(p);
  EXPECT_EQ(count(svg, "<polygon"), 1u);
  EXPECT_NE(svg.find("fill-opacity=\"0.2\""), std::string::npos);
  // The y range covers the interval ends, not just the points.
  SvgCanvas c(720, 480);
  auto L = layout(p, c, 720, 480);
  EXPECT_LT(L.y.lo, 1.5);
  EXPECT_GT(L.y.hi, 5.5);
  // As error bars: a vertical bar and two caps per point, no polygon.
  p.series[0].style.interval = IntervalStyle::ErrorBars;
  p.series[0].style.lines = false;
  svg = to_svg(p);
  EXPECT_EQ(count(svg, "<polygon"), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 3u * 3 + L.x_ticks.size() * 2 + L.y_ticks.size() * 2);  // + grid and ticks
}

TEST(Svg, NonPositivePointsAreLeftOutOnLogAxes) {
  Plot p;
  p.series.push_back({"s", {{1, 1}, {10, 0.0}, {100, 10}, {-1, 5}, {1000, 5, -1.0, 6.0}}, {}});
  p.legend = LegendPosition::None;
  std::string svg = to_svg(p);
  EXPECT_EQ(count(svg, "<circle"), 3u);
  EXPECT_EQ(count(svg, "<polygon"), 0u);  // the only interval has a non-positive end
  EXPECT_FALSE(std::regex_search(svg, std::regex(R"([\s=",](-?nan|-?inf))"))) << "non-finite coordinate";
}

TEST(Png, AntialiasedLineWhereExpected) {
  const std::string path = (fs::temp_directory_path() / ("nfscale_plot_" + std::to_string(::getpid()) + ".png")).string();
  Plot p = red_line_plot();
  write_png(p, path, 640, 400);
  const Image img = decode_png_file(path);
  fs::remove(path);
  ASSERT_EQ(img.width, 640);
  ASSERT_EQ(img.height, 400);
  SvgCanvas probe(640, 400);
  auto L = layout(p, probe, 640, 400);
  const int x = static_cast<int>(L.x(5.0)), y = static_cast<int>(L.y(5.0));
  EXPECT_TRUE(reddish(img.pixel(x, y)));
  EXPECT_TRUE(reddish(img.pixel(static_cast<int>(L.x(1.0)), y)));
  EXPECT_EQ(img.pixel(x, static_cast<int>(L.y(3.0))), (Rgb{255, 255, 255}));  // between grid lines: background
  EXPECT_EQ(img.pixel(2, 2), (Rgb{255, 255, 255}));
  // The frame is dark at the left edge of the plot area half way up.
  const Rgb frame = img.pixel(static_cast<int>(std::floor(L.px0)), static_cast<int>(L.y(7.0)));
  EXPECT_LT(frame.r, 120) << int(frame.r);
  // Real antialiased text: the title band holds many grey levels, not just black and white.
  std::set<int> greys;
  int dark = 0;
  for (int yy = 0; yy < static_cast<int>(L.py0); ++yy)
    for (int xx = 0; xx < img.width; ++xx) {
      const Rgb c = img.pixel(xx, yy);
      dark += c.r < 100;
      greys.insert(c.r);
    }
  EXPECT_GT(dark, 20);
  EXPECT_GT(greys.size(), 20u);
}

TEST(Png, DiagonalLinesAreSmoothAndDashedLinesHaveGaps) {
  Plot p = red_line_plot();
  p.series[0].points = {{0.0, 0.0}, {10.0, 10.0}};
  Image img = rasterize(p, 640, 400);
  SvgCanvas probe(640, 400);
  auto L = layout(p, probe, 640, 400);
  // Along a diagonal, the edge pixels are blends of red and white (antialiasing).
  int blends = 0;
  for (int x = static_cast<int>(L.x(2.0)); x < static_cast<int>(L.x(8.0)); ++x)
    for (int y = 0; y < img.height; ++y) {
      const Rgb c = img.pixel(x, y);
      blends += c.r > 200 && c.g > 60 && c.g < 200 && std::abs(int(c.g) - int(c.b)) < 8;
    }
  EXPECT_GT(blends, 100);
  p = red_line_plot();
  p.series[0].style.dashed = true;
  img = rasterize(p, 640, 400);
  const int y = static_cast<int>(L.y(5.0));
  int red = 0, other = 0;
  for (int x = static_cast<int>(L.px0) + 2; x < static_cast<int>(L.px1) - 2; ++x) (reddish(img.pixel(x, y)) ? red : other)++;
  EXPECT_GT(red, other);  // 3.7 on, 1.6 off
  EXPECT_GT(other, 40);
}

TEST(Png, BandIsTranslucent) {
  Plot p = red_line_plot();
  p.series[0].points = {{0.0, 5.0, 3.0, 7.0}, {10.0, 5.0, 3.0, 7.0}};
  const Image img = rasterize(p, 640, 400);
  SvgCanvas probe(640, 400);
  auto L = layout(p, probe, 640, 400);
  const Rgb inside = img.pixel(static_cast<int>(L.x(5.5)), static_cast<int>(L.y(4.2)));
  EXPECT_EQ(inside.r, 255);
  EXPECT_NEAR(inside.g, 255 * 0.8, 3);  // 20% red over white
  EXPECT_EQ(img.pixel(static_cast<int>(L.x(5.5)), static_cast<int>(L.y(8.2))), (Rgb{255, 255, 255}));
}

TEST(Pdf, OnePageWithTheSizeAndAValidTrailer) {
  const std::string pdf = encode_pdf(red_line_plot(), 720, 480);
  ASSERT_EQ(pdf.rfind("%PDF-1.", 0), 0u);
  EXPECT_NE(pdf.find("%%EOF", pdf.size() - 8), std::string::npos);
  EXPECT_EQ(count(pdf, "/Type /Page\n") + count(pdf, "/Type /Page "), 1u) << "exactly one page object";
  EXPECT_NE(pdf.find("/MediaBox [ 0 0 540 360 ]"), std::string::npos);  // 720x480 px = 540x360 pt
  EXPECT_NE(pdf.find("/FontFile"), std::string::npos);  // the font is embedded
  // startxref points at the cross-reference table.
  const size_t sx = pdf.rfind("startxref");
  ASSERT_NE(sx, std::string::npos);
  const size_t offset = std::stoul(pdf.substr(sx + 10));
  ASSERT_LT(offset, pdf.size());
  EXPECT_EQ(pdf.substr(offset, 4), "xref");
}

TEST(Files, WriteFigureWritesSvgPdfAndScaledPng) {
  const fs::path dir = fs::temp_directory_path() / ("nfscale_fig_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Plot p = red_line_plot();
  write_figure(p, (dir / "fig").string(), 360, 240, 2);
  const std::string png = nfscale::read_file((dir / "fig.png").string());
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const Image img = decode_png_file((dir / "fig.png").string());
  EXPECT_EQ(img.width, 720);
  EXPECT_EQ(img.height, 480);
  const std::string svg = nfscale::read_file((dir / "fig.svg").string());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("width=\"360\""), std::string::npos);
  EXPECT_EQ(tag_balance_problem(svg), "");
  EXPECT_EQ(nfscale::read_file((dir / "fig.pdf").string()).rfind("%PDF-", 0), 0u);
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 3u);  // no temp files left
  EXPECT_THROW(write_figure(p, (dir / "x").string(), 360, 240, 0), nfscale::UserError);
  fs::remove_all(dir);
}

TEST(BadInput, SizesAndRangesAreRefused) {
  Plot p = red_line_plot();
  EXPECT_THROW(rasterize(p, 100, 50), nfscale::UserError);
  EXPECT_THROW(CairoCanvas(CairoCanvas::Target::Image, 0, 10), nfscale::UserError);
  EXPECT_THROW(CairoCanvas(CairoCanvas::Target::Image, 20000, 10), nfscale::UserError);
  p.x_range = std::make_pair(5.0, 1.0);
  try {
    to_svg(p);
    FAIL() << "inverted range accepted";
  } catch (const nfscale::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("x_range"), std::string::npos) << e.what();
  }
  Plot q;
  q.x_range = std::make_pair(0.0, 1.0);  // log axis
  EXPECT_THROW(to_svg(q), nfscale::UserError);
  CairoCanvas pdf(CairoCanvas::Target::Pdf, 100, 100);
  EXPECT_THROW(pdf.pixels(), nfscale::UserError);
  EXPECT_NO_THROW(pdf.finish_pdf());
  EXPECT_THROW(pdf.finish_pdf(), nfscale::UserError);
}

}  // namespace
