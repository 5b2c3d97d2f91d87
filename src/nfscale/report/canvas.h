// canvas.h - the drawing surface plots render onto, with two back ends: SVG text and an RGB raster (PNG).
// One plot renderer drives either, so SVG and PNG figures show the same layout.
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
std::string to_hex(Rgb c);  // "#rrggbb"

enum class Anchor { Start, Middle, End };

// Coordinates are pixels, origin top-left, y down. Text is placed by its anchor point horizontally and its
// vertical centre at y; vertical text reads bottom to top, centred on (x, y) along its length.
class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void polyline(const std::vector<std::pair<double, double>>& points, Rgb color, double width,
                        bool dashed) = 0;
  virtual void circle(double cx, double cy, double radius, Rgb fill) = 0;
  virtual void rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke) = 0;
  virtual void text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
                    bool vertical = false) = 0;
  // Width in pixels `text` takes at `size`.
  virtual double text_width(const std::string& text, double size) const = 0;
  // Groups the following elements under a name (SVG <g> with a <title>); no-op for rasters.
  virtual void begin_group(const std::string& name) {}
  virtual void end_group() {}

  void line(double x0, double y0, double x1, double y1, Rgb color, double width, bool dashed = false) {
    polyline({{x0, y0}, {x1, y1}}, color, width, dashed);
  }
};

// Builds an SVG document as text.
class SvgCanvas : public Canvas {
 public:
  SvgCanvas(int width, int height);
  void polyline(const std::vector<std::pair<double, double>>& points, Rgb color, double width, bool dashed) override;
  void circle(double cx, double cy, double radius, Rgb fill) override;
  void rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke) override;
  void text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
            bool vertical) override;
  double text_width(const std::string& text, double size) const override;
  void begin_group(const std::string& name) override;
  void end_group() override;
  // The finished document (<svg ...> ... </svg>).
  std::string str() const;

 private:
  int width_, height_;
  std::string body_;
};

// An 8-bit RGB image with a small rasteriser (thick/dashed lines, filled circles, rectangles, 5x7 bitmap text).
class RasterCanvas : public Canvas {
 public:
  RasterCanvas(int width, int height, Rgb background = {255, 255, 255});
  void polyline(const std::vector<std::pair<double, double>>& points, Rgb color, double width, bool dashed) override;
  void circle(double cx, double cy, double radius, Rgb fill) override;
  void rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke) override;
  void text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
            bool vertical) override;
  double text_width(const std::string& text, double size) const override;

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb pixel(int x, int y) const;
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // row-major, 3 bytes per pixel
  // PNG file bytes of the image (libpng).
  std::string encode_png() const;

 private:
  void set(int x, int y, Rgb c);
  void disc(double cx, double cy, double radius, Rgb c);
  int font_scale(double size) const;
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

// Escapes & < > " ' for XML/HTML text and attribute values.
std::string xml_escape(const std::string& text);

}  // namespace nfscale::report
