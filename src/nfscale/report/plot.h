// plot.h - a generic 2-D line/scatter plot (log or linear axes) rendered to SVG text or a PNG file.
// Used for the scaling-study figures (figures.h) and embedded in the HTML report (html.h).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nfscale/report/canvas.h"

namespace nfscale::report {

enum class Scale { Linear, Log };

struct Point {
  double x = 0.0, y = 0.0;
};

struct SeriesStyle {
  bool markers = true;
  bool lines = true;
  bool dashed = false;
  std::optional<Rgb> color;  // default: the palette colour of the series' index
  double line_width = 2.0;
  double marker_radius = 4.0;
};

// Points are drawn in the order given (sort them by x for a curve). On a log axis, points with a non-positive
// coordinate cannot be shown and are left out.
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
};

struct Tick {
  double value = 0.0;
  std::string label;  // empty for a minor (unlabelled) tick
  bool major() const { return !label.empty(); }
};

// Ticks within [lo, hi] (0 < lo < hi) on a log axis: labelled at powers of ten, or at 1-2-5 or 1..9 multiples
// when the range spans too few decades for three labels; the remaining 1..9 multiples as minor ticks
// (left out above 8 decades).
std::vector<Tick> log_ticks(double lo, double hi);
// "Nice" ticks (steps of 1, 2 or 5 times a power of ten, about 5 to 10 of them) within [lo, hi].
std::vector<Tick> linear_ticks(double lo, double hi);
// Short tick label: 0.25, 10, 1000, 1e5, 2e-4.
std::string format_tick(double v);

// Maps data values on one axis to pixels: lo -> p0, hi -> p1 (linearly in log10 space on a log axis).
struct AxisMap {
  double lo, hi, p0, p1;
  bool log;
  double operator()(double v) const;
};

// The colour of series `index` in the default palette.
Rgb palette_color(size_t index);

// Where things go on a canvas of width x height: the plot area [px0, px1] x [py0, py1] (pixels), the axis
// maps from data to pixels, and the ticks of both axes.
struct PlotLayout {
  double px0, px1, py0, py1;
  AxisMap x, y;
  std::vector<Tick> x_ticks, y_ticks;
  double scale;                 // font and spacing scale (height / 480)
  std::vector<size_t> legend_entries;  // indices of the named series, in legend order
  double legend_x = 0, legend_y = 0, legend_w = 0, legend_h = 0;  // legend box (w = 0: no legend)
};
PlotLayout layout(const Plot& plot, const Canvas& canvas, int width, int height);

// Renders the plot onto any canvas of the given size.
void render(const Plot& plot, Canvas& canvas, int width, int height);
// A standalone SVG document (no XML declaration, so it can be inlined in HTML).
std::string to_svg(const Plot& plot, int width = 720, int height = 480);
// Rasterises the plot (for tests and callers that want pixels).
RasterCanvas rasterize(const Plot& plot, int width, int height);
// Writes the plot as a PNG file of width x height pixels, atomically.
void write_png(const Plot& plot, const std::string& path, int width = 900, int height = 600);

}  // namespace nfscale::report
