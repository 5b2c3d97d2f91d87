// plot.h - a generic 2-D line/scatter plot (log or linear axes, per-point intervals drawn as bands or error bars,
// per-point hover text) and its output: SVG text (inline in HTML, hover titles), PNG and PDF through cairo.
// Used for the scaling-study figures (figures.h) and embedded in the HTML report (html.h).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nfscale/report/cairo_canvas.h"
#include "nfscale/report/canvas.h"
#include "nfscale/report/ticks.h"

namespace nfscale::report {

enum class Scale { Linear, Log };

struct Point {
  Point() = default;
  Point(double x_, double y_, std::string tooltip_ = "") : x(x_), y(y_), tooltip(std::move(tooltip_)) {}
  Point(double x_, double y_, double lo, double hi, std::string tooltip_ = "")
      : x(x_), y(y_), y_lo(lo), y_hi(hi), tooltip(std::move(tooltip_)) {}
  double x = 0.0, y = 0.0;
  // Optional interval of y (e.g. a bootstrap interval or the spread over seeds), drawn per the series style.
  std::optional<double> y_lo, y_hi;
  // Hover text in SVG/HTML (e.g. "F1, 4 epochs, LR 0.8: loss 0.412"); empty: "<series>: x = .., y = ..".
  std::string tooltip;
  // Optional short text drawn beside the marker (right of it; left where it would cross the plot area's edge),
  // for figures of a few named points (e.g. published results).
  std::string label;
};

// How per-point y intervals are drawn: a translucent band between the lower and upper ends (a fitted curve's
// interval), or a vertical error bar at each point (repeated seeds).
enum class IntervalStyle { Band, ErrorBars };

struct SeriesStyle {
  bool markers = true;
  bool lines = true;
  bool dashed = false;
  std::optional<Rgb> color;  // default: the palette colour of the series' index
  double line_width = 1.8;
  double marker_radius = 3.6;
  IntervalStyle interval = IntervalStyle::Band;
  double band_opacity = 0.2;
  bool in_legend = true;       // false: named (hover title) but not listed in the legend
  bool legend_marker = false;  // draw a marker in the legend sample even without markers (a fit to dots)
};

// Points are drawn in the order given (sort them by x for a curve). On a log axis, points with a non-positive
// coordinate cannot be shown and are left out (so are interval ends <= 0).
struct Series {
  std::string name;  // legend entry; empty = not in the legend
  std::vector<Point> points;
  SeriesStyle style;
};

// OutsideRight (default) puts the legend right of the plot area, where it can never hide data.
enum class LegendPosition { OutsideRight, TopRight, TopLeft, BottomRight, BottomLeft, None };

struct Plot {
  std::string title;
  std::string x_label, y_label;
  Scale x_scale = Scale::Log, y_scale = Scale::Log;
  std::vector<Series> series;
  std::string annotation;  // a subtitle line under the title (e.g. the fit formula)
  LegendPosition legend = LegendPosition::OutsideRight;
  // Optional overrides: axis range [lo, hi] and labelled tick values (default: chosen from the data).
  std::optional<std::pair<double, double>> x_range, y_range;
  std::vector<double> x_ticks, y_ticks;
  // Horizontal reference lines across the whole plot area (thin, dashed, dark grey), e.g. 0 on a residual plot.
  std::vector<double> reference_y;
};

// Maps data values on one axis to pixels: lo -> p0, hi -> p1 (linearly in log10 space on a log axis).
struct AxisMap {
  double lo, hi, p0, p1;
  bool log;
  double operator()(double v) const;
};

// The colour of series `index` in the default palette (matplotlib's tab10).
Rgb palette_color(size_t index);

// Where things go on a canvas of width x height: the plot area [px0, px1] x [py0, py1] (pixels), the axis
// maps from data to pixels, and the ticks of both axes (labels thinned so they never overlap).
struct PlotLayout {
  double px0, px1, py0, py1;
  AxisMap x, y;
  std::vector<Tick> x_ticks, y_ticks;
  double scale;                        // font and spacing scale (height / 480)
  std::vector<size_t> legend_entries;  // indices of the named series, in legend order
  double legend_x = 0, legend_y = 0, legend_w = 0, legend_h = 0;  // legend box (w = 0: no legend)
};
PlotLayout layout(const Plot& plot, const Canvas& canvas, int width, int height);

// Renders the plot onto any canvas of the given size.
void render(const Plot& plot, Canvas& canvas, int width, int height);

// A standalone SVG document (no XML declaration, so it can be inlined in HTML), with hover titles.
std::string to_svg(const Plot& plot, int width = 720, int height = 480);
// The plot drawn by cairo: pixels (for tests), PNG bytes, PDF bytes (one page, width x height * 0.75 pt).
Image rasterize(const Plot& plot, int width, int height);
std::string encode_png(const Plot& plot, int width, int height);
std::string encode_pdf(const Plot& plot, int width, int height);
// Files, written atomically.
void write_png(const Plot& plot, const std::string& path, int width = 900, int height = 600);
void write_pdf(const Plot& plot, const std::string& path, int width = 720, int height = 480);
void write_svg(const Plot& plot, const std::string& path, int width = 720, int height = 480);
// <stem>.svg and <stem>.pdf at width x height, and <stem>.png at png_scale times that many pixels (same look).
void write_figure(const Plot& plot, const std::string& stem, int width = 720, int height = 480, int png_scale = 2);

}  // namespace nfscale::report
