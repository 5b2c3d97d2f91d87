// test_figures.cpp - the study's figure builders: fit lines and bands, tick choices, the LR-slope figure, the
// residual plot, the two-family frontier figure, the published-results figure, tooltips, and refused input.
#include <gtest/gtest.h>

#include <cmath>

#include "nfscale/report/figures.h"
#include "nfscale/report/svg_canvas.h"
#include "nfscale/util/error.h"
#include "report_test_util.h"

using namespace nfscale::report;
using namespace nfscale::report::testing;

namespace {

std::vector<std::string> y_labels(const Plot& p) {
  SvgCanvas c(720, 480);
  std::vector<std::string> out;
  for (const auto& t : layout(p, c, 720, 480).y_ticks)
    if (t.major()) out.push_back(t.label);
  return out;
}

TEST(Figures, TrialTooltip) {
  EXPECT_EQ(trial_tooltip("F1", 4, 0.8, 0.41234, 1.2e15), "F1, 4 epochs, LR 0.8: loss 0.4123 at 1.2e+15 FLOPs");
  EXPECT_EQ(trial_tooltip("F0", 1, 1.6, 2.5), "F0, 1 epoch, LR 1.6: loss 2.5000");
}

TEST(Figures, LossVsComputeDrawsTheFitWithItsBand) {
  PowerLawLine fit{30.0, -0.067, 1e15, 1.2e16, "frontier fit", {}};
  for (double x : {1.2e16, 1e15, 4e15})  // unsorted on purpose
    fit.interval.push_back({x, 0.97 * 30.0 * std::pow(x, -0.067), 1.03 * 30.0 * std::pow(x, -0.067)});
  auto p = loss_vs_compute_figure({{"F0", {{2e15, 2.8, 2.75, 2.85}, {1e15, 3.0}}}, {"F1", {{3e15, 2.75}}}}, fit);
  ASSERT_EQ(p.series.size(), 3u);
  EXPECT_DOUBLE_EQ(p.series[0].points[0].x, 1e15);  // sorted by compute
  EXPECT_EQ(p.series[0].style.interval, IntervalStyle::ErrorBars);  // seeds' spread as error bars
  const Series& f = p.series[2];
  EXPECT_TRUE(f.style.dashed);
  EXPECT_FALSE(f.style.markers);
  ASSERT_EQ(f.points.size(), 3u);
  EXPECT_DOUBLE_EQ(f.points[1].x, 4e15);
  EXPECT_NEAR(f.points[1].y, 30.0 * std::pow(4e15, -0.067), 1e-12);
  EXPECT_NEAR(*f.points[1].y_hi / f.points[1].y, 1.03, 1e-12);
  EXPECT_EQ(p.annotation, "fit: L = 30 * C^-0.067 (band: interval of the fit)");
  const std::string svg = to_svg(p);
  EXPECT_EQ(count(svg, "<polygon"), 2u);  // the band and its legend sample
  EXPECT_EQ(tag_balance_problem(svg), "");
  // Without an interval: the two ends, no band.
  fit.interval.clear();
  p = loss_vs_compute_figure({{"F0", {{1e15, 3.0}}}}, fit);
  EXPECT_EQ(p.series[1].points.size(), 2u);
  EXPECT_EQ(count(to_svg(p), "<polygon"), 0u);
  EXPECT_THROW(loss_vs_compute_figure({}, PowerLawLine{1, -0.1, 10, 1, "fit", {}}), nfscale::UserError);
  EXPECT_THROW(loss_vs_compute_figure({}, PowerLawLine{NAN, -0.1, 1, 10, "fit", {}}), nfscale::UserError);
}

TEST(Figures, OptimalLrTicksAtRoundGridValuesOnly) {
  auto p = optimal_lr_figure({{"F0", {{0.25, 1.6}, {1, 1.6}, {4, 0.8}, {8, 0.4}}},
                              {"F1", {{0.25, 1.6}, {1, 0.8}, {4, 0.4}, {8, 0.2}}}});
  EXPECT_EQ(p.x_ticks, (std::vector<double>{0.25, 1, 4, 8}));
  EXPECT_EQ(p.y_ticks, (std::vector<double>{0.2, 0.4, 0.8, 1.6}));
  std::string svg = to_svg(p);
  EXPECT_NE(svg.find(">0.25<"), std::string::npos);
  EXPECT_NE(svg.find(">1.6<"), std::string::npos);
  // Parabola-refined LRs are not round: automatic ticks with short labels, never "1.73272".
  p = optimal_lr_figure({{"F0", {{0.25, 1.73272}, {1, 1.1877}, {4, 0.61}}}});
  EXPECT_TRUE(p.y_ticks.empty());
  for (const auto& l : y_labels(p)) EXPECT_LE(l.size(), 4u) << l;
  EXPECT_EQ(to_svg(p).find("1.73272"), std::string::npos);
}

TEST(Figures, LrSlopeFigureShowsFitsAndSlopes) {
  LrSlopeCurve f0{"F0", {{0.5, 2.0}, {1, 1.6}, {2, 1.1}, {4, 0.8}}, PowerLawLine{1.56, -0.45, 0.5, 4, "", {}}};
  LrSlopeCurve f1{"F1", {{0.5, 1.6}, {1, 1.2}}, std::nullopt};
  auto p = lr_slope_figure({f0, f1});
  ASSERT_EQ(p.series.size(), 3u);  // two data series, one fit
  EXPECT_EQ(p.series[0].name, "F0");
  EXPECT_FALSE(p.series[0].style.in_legend);  // the fit stands for F0 in the legend
  EXPECT_EQ(p.series[1].name, "F1, no fit");
  EXPECT_TRUE(p.series[1].style.in_legend);
  EXPECT_FALSE(p.series[0].style.lines);
  const Series& fit = p.series[2];
  EXPECT_EQ(fit.name, "F0, slope -0.45");
  EXPECT_TRUE(fit.style.legend_marker);
  EXPECT_TRUE(fit.style.dashed);
  EXPECT_EQ(*fit.style.color, *p.series[0].style.color);  // same colour as its model
  ASSERT_EQ(fit.points.size(), 2u);
  EXPECT_NEAR(fit.points[1].y, 1.56 * std::pow(4.0, -0.45), 1e-12);
  EXPECT_EQ(p.x_ticks, (std::vector<double>{0.5, 1, 2, 4}));
  const std::string svg = to_svg(p);
  EXPECT_NE(svg.find(">F0, slope -0.45<"), std::string::npos);
  EXPECT_NE(svg.find(">F1, no fit<"), std::string::npos);
  EXPECT_EQ(svg.find(">F0</text>"), std::string::npos);        // not a legend entry of its own
  EXPECT_NE(svg.find("<title>F0</title>"), std::string::npos);   // but the dots' group title
  EXPECT_EQ(count(svg, "stroke-dasharray"), 2u);  // the fit line and its legend sample
  EXPECT_EQ(count(svg, "<circle"), 6u + 2);       // six dots, two legend markers
}

TEST(Figures, ResidualsAreLogRatiosToTheFit) {
  PowerLawLine fit{20.0, -0.05, 1e15, 1e17, "frontier fit", {{1e15, 0.0, 0.0}, {1e17, 0.0, 0.0}}};
  for (auto& iv : fit.interval) {
    const double f = 20.0 * std::pow(iv.x, -0.05);
    iv.lo = f * std::exp(-0.02);
    iv.hi = f * std::exp(0.03);
  }
  const double c1 = 2e15, l1 = 20.0 * std::pow(c1, -0.05) * std::exp(0.015);
  const double c2 = 5e16, l2 = 20.0 * std::pow(c2, -0.05) * std::exp(-0.01);
  auto p = residual_figure({{"F0", {{c1, l1, "F0, 1 epoch"}, {-1, 2.0}}}, {"F1", {{c2, l2}}}}, fit);
  EXPECT_EQ(p.y_scale, Scale::Linear);
  EXPECT_EQ(p.reference_y, (std::vector<double>{0.0}));
  ASSERT_EQ(p.series.size(), 3u);  // band, F0, F1
  const Series& band = p.series[0];
  EXPECT_FALSE(band.style.lines);
  ASSERT_EQ(band.points.size(), 2u);
  EXPECT_NEAR(*band.points[0].y_lo, -0.02, 1e-12);
  EXPECT_NEAR(*band.points[1].y_hi, 0.03, 1e-12);
  ASSERT_EQ(p.series[1].points.size(), 1u);  // the non-positive compute is left out
  EXPECT_NEAR(p.series[1].points[0].y, 0.015, 1e-12);
  EXPECT_EQ(p.series[1].points[0].tooltip, "F0, 1 epoch; residual +0.0150");
  EXPECT_NEAR(p.series[2].points[0].y, -0.01, 1e-12);
  EXPECT_EQ(p.series[2].points[0].tooltip, "F1 at 5e+16; residual -0.0100");
  const std::string svg = to_svg(p);
  EXPECT_EQ(tag_balance_problem(svg), "");
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the zero line
  EXPECT_THROW(residual_figure({}, PowerLawLine{1, -0.1, 0, 10, "fit", {}}), nfscale::UserError);
}

TEST(Figures, FinetuneReferencesAreMarkersOnly) {
  auto p = finetune_error_figure({{"F3", {{2e16, 0.2}, {1e16, 0.25}}}}, {{"ViT-g/14", {{3e16, 0.098}}}});
  ASSERT_EQ(p.series.size(), 2u);
  EXPECT_TRUE(p.series[0].style.lines);
  EXPECT_DOUBLE_EQ(p.series[0].points[0].x, 1e16);  // sorted by compute
  EXPECT_FALSE(p.series[1].style.lines);
}

TEST(Figures, FamilyFrontiersGiveEachFamilyItsColourRunsFrontierAndFit) {
  PowerLawLine fa{2.0, -0.1, 1e10, 1e12, "", {}};
  fa.interval = {{1e10, 0.9, 1.1}, {1e12, 0.5, 0.7}};
  FamilyFrontier a{"NFNet", {{1e10, 0.95}, {2e10, 1.3}, {1e12, 0.6}}, {{1e12, 0.6}, {1e10, 0.95}}, fa};
  FamilyFrontier b{"ViT", {{3e10, 1.4}, {3e12, 0.9}}, {{3e10, 1.4}, {3e12, 0.9}}, std::nullopt};
  const Plot p = family_frontiers_figure({a, b});
  ASSERT_EQ(p.series.size(), 5u);  // NFNet: runs, frontier, fit; ViT: runs, frontier (no fit)
  EXPECT_EQ(p.series[0].name, "NFNet runs");
  EXPECT_FALSE(p.series[0].style.lines);
  EXPECT_FALSE(p.series[0].style.in_legend);
  EXPECT_EQ(p.series[1].name, "NFNet frontier");
  EXPECT_DOUBLE_EQ(p.series[1].points[0].x, 1e10);  // sorted by compute
  EXPECT_TRUE(p.series[1].style.lines);
  EXPECT_TRUE(p.series[2].style.dashed);
  EXPECT_EQ(p.series[2].name, "NFNet fit: L = 2 C^-0.100");
  EXPECT_EQ(p.series[2].points.size(), 2u);  // one point per interval x, carrying the band
  EXPECT_EQ(*p.series[2].points[1].y_lo, 0.5);
  // One colour per family across its series; the families differ.
  EXPECT_EQ(p.series[0].style.color->r, p.series[2].style.color->r);
  EXPECT_NE(p.series[1].style.color->r, p.series[4].style.color->r);
  EXPECT_EQ(p.series[4].name, "ViT frontier");
  EXPECT_NE(p.annotation.find("NFNet b = -0.100"), std::string::npos) << p.annotation;
  EXPECT_THROW(family_frontiers_figure({}), nfscale::UserError);
  FamilyFrontier bad = a;
  bad.fit->x_max = bad.fit->x_min;
  EXPECT_THROW(family_frontiers_figure({bad}), nfscale::UserError);
}

TEST(Figures, PublishedResultsAreLabelledMarkersOnALinearAccuracyAxis) {
  NamedCurve vit{"ViT (published)", {{120e3, 90.2}, {280e3, 90.45}}};
  vit.points[1].label = "ViT-G/14 90.45%";
  const Plot p = published_results_figure({{"NFNet (published)", {{110e3, 90.3}, {110e3, 90.4}}}, vit},
                                          "published numbers, not measured");
  ASSERT_EQ(p.series.size(), 2u);
  EXPECT_EQ(p.y_scale, Scale::Linear);
  EXPECT_EQ(p.x_scale, Scale::Log);
  for (const auto& s : p.series) EXPECT_FALSE(s.style.lines);
  EXPECT_NE(p.title.find("not measured"), std::string::npos);
  EXPECT_EQ(p.annotation, "published numbers, not measured");
  // Every point inside the axis ranges with a margin, and a point's label drawn as text.
  ASSERT_TRUE(p.x_range && p.y_range);
  EXPECT_LT(p.x_range->first, 110e3);
  EXPECT_GT(p.x_range->second, 280e3);
  EXPECT_LT(p.y_range->first, 90.2);
  EXPECT_GT(p.y_range->second, 90.45);
  const std::string svg = to_svg(p);
  EXPECT_EQ(count(svg, ">ViT-G/14 90.45%<"), 1u) << svg;
}

// A label whose place right of its marker is taken by a neighbouring marker moves (here: above or left), and a
// label that would cross the frame's right edge is drawn left of its marker.
TEST(Figures, PointLabelsAvoidNeighboursAndTheFrame) {
  Plot p;
  p.x_scale = p.y_scale = Scale::Linear;
  p.x_range = std::make_pair(0.0, 10.0);
  p.y_range = std::make_pair(0.0, 10.0);
  Series s;
  s.style.lines = false;
  s.points = {{2, 5}, {2.4, 5}, {9.9, 2}};
  s.points[0].label = "crowded";
  s.points[2].label = "at the edge";
  p.series.push_back(s);
  const std::string svg = to_svg(p);
  auto anchor_of = [&](const std::string& text) {
    const size_t at = svg.find(">" + text + "<");
    EXPECT_NE(at, std::string::npos) << text;
    const size_t a = svg.rfind("text-anchor=\"", at);
    return svg.substr(a + 13, svg.find('"', a + 13) - (a + 13));
  };
  EXPECT_NE(anchor_of("crowded"), "start") << svg;
  EXPECT_EQ(anchor_of("at the edge"), "end") << svg;
}

}  // namespace
