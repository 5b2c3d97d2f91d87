// canvas.h - the drawing surface plots render onto. Two implementations: SvgCanvas (SVG text with hover
// titles, for the HTML report and .svg files) and CairoCanvas (antialiased PNG and PDF through cairo + pango).
// One plot renderer drives either, so every format shows the same layout.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nfscale::report {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

enum class Anchor { Start, Middle, End };

using PixelPath = std::vector<std::pair<double, double>>;  // (x, y) pixel coordinates

// Coordinates are pixels, origin top-left, y down. Text is placed by its anchor point horizontally and the centre
// of its line box vertically at y; vertical text reads bottom to top, anchored along its length at (x, y).
class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void polyline(const PixelPath& points, Rgb color, double width, bool dashed) = 0;
  // A filled polygon (no outline), `opacity` in [0, 1]: confidence bands.
  virtual void polygon(const PixelPath& points, Rgb fill, double opacity) = 0;
  // A data marker: a filled disc with a thin white edge; `tooltip` is shown on hover where the format allows
  // (SVG <title>), ignored otherwise. Empty tooltip: none.
  virtual void marker(double cx, double cy, double radius, Rgb fill, const std::string& tooltip) = 0;
  virtual void rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke,
                    double stroke_width = 1.0) = 0;
  virtual void text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
                    bool vertical = false) = 0;
  // Width in pixels `text` takes at font size `size` (pixels).
  virtual double text_width(const std::string& text, double size) const = 0;
  // Groups the following elements under a name (SVG <g> with a <title>); no-op for other formats.
  virtual void begin_group(const std::string& name) {}
  virtual void end_group() {}

  void line(double x0, double y0, double x1, double y1, Rgb color, double width, bool dashed = false) {
    polyline({{x0, y0}, {x1, y1}}, color, width, dashed);
  }
};

}  // namespace nfscale::report
