// svg_canvas.h - the SVG implementation of Canvas: hand-written SVG text, text kept as text (DejaVu Sans, measured
// with pango), a <title> per series group and per marker so browsers show the trial on hover, no ids (several
// figures can be inlined in one HTML page).
#pragma once
#include <string>

#include "nfscale/report/canvas.h"

namespace nfscale::report {

std::string to_hex(Rgb c);  // "#rrggbb"
// Escapes & < > " ' for XML/HTML text and attribute values (and replaces invalid UTF-8 with U+FFFD).
std::string xml_escape(const std::string& text);

class SvgCanvas : public Canvas {
 public:
  SvgCanvas(int width, int height);
  void polyline(const PixelPath& points, Rgb color, double width, bool dashed) override;
  void polygon(const PixelPath& points, Rgb fill, double opacity) override;
  void marker(double cx, double cy, double radius, Rgb fill, const std::string& tooltip) override;
  void rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke,
            double stroke_width) override;
  void text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
            bool vertical) override;
  double text_width(const std::string& text, double size) const override;
  void begin_group(const std::string& name) override;
  void end_group() override;
  // The finished document (<svg ...> ... </svg>, no XML declaration, so it can be inlined in HTML).
  std::string str() const;

 private:
  int width_, height_;
  std::string body_;
};

}  // namespace nfscale::report
