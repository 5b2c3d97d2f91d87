// cairo_canvas.h - the cairo implementation of Canvas: antialiased drawing with pango text (DejaVu Sans) onto an
// image surface (PNG, or pixels for tests) or a one-page PDF; the cairo headers stay in the .cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfscale/report/canvas.h"

namespace nfscale::report {

// An 8-bit RGB image (row-major, 3 bytes per pixel).
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Rgb pixel(int x, int y) const;  // throws std::out_of_range outside the image
};

class CairoCanvas : public Canvas {
 public:
  enum class Target { Image, Pdf };
  // A white canvas of width x height pixels; a PDF page is width x height * 0.75 points (96 px per inch).
  // Throws UserError for sizes outside 1..16384.
  CairoCanvas(Target target, int width, int height);
  ~CairoCanvas() override;
  CairoCanvas(const CairoCanvas&) = delete;
  CairoCanvas& operator=(const CairoCanvas&) = delete;

  void polyline(const PixelPath& points, Rgb color, double width, bool dashed) override;
  void polygon(const PixelPath& points, Rgb fill, double opacity) override;
  void marker(double cx, double cy, double radius, Rgb fill, const std::string& tooltip) override;
  void rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke,
            double stroke_width) override;
  void text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
            bool vertical) override;
  double text_width(const std::string& text, double size) const override;

  // Image target: the pixels, and the PNG file bytes.
  Image pixels() const;
  std::string png() const;
  // PDF target: finishes the document and returns its bytes (the canvas cannot be drawn on afterwards).
  std::string finish_pdf();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace nfscale::report
