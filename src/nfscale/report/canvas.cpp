// canvas.cpp - SVG and raster back ends of the plot canvas, and PNG encoding with libpng.
#include "nfscale/report/canvas.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "nfscale/report/font5x7.h"
#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}
const char* anchor_name(Anchor a) {
  switch (a) {
    case Anchor::Start: return "start";
    case Anchor::Middle: return "middle";
    case Anchor::End: return "end";
  }
  return "start";
}
}  // namespace

std::string to_hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------- SVG

SvgCanvas::SvgCanvas(int width, int height) : width_(width), height_(height) {}

void SvgCanvas::polyline(const std::vector<std::pair<double, double>>& points, Rgb color, double width,
                         bool dashed) {
  if (points.size() < 2) return;
  body_ += "<polyline fill=\"none\" stroke=\"" + to_hex(color) + "\" stroke-width=\"" + num(width) + "\"";
  if (dashed) body_ += " stroke-dasharray=\"" + num(6 * width) + "," + num(4 * width) + "\"";
  body_ += " stroke-linejoin=\"round\" points=\"";
  for (size_t i = 0; i < points.size(); ++i)
    body_ += (i ? " " : "") + num(points[i].first) + "," + num(points[i].second);
  body_ += "\"/>\n";
}

void SvgCanvas::circle(double cx, double cy, double radius, Rgb fill) {
  body_ += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(radius) + "\" fill=\"" +
           to_hex(fill) + "\"/>\n";
}

void SvgCanvas::rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + (fill ? to_hex(*fill) : "none") + "\"";
  if (stroke) body_ += " stroke=\"" + to_hex(*stroke) + "\" stroke-width=\"1\"";
  body_ += "/>\n";
}

void SvgCanvas::text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
                     bool vertical) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) + "\" text-anchor=\"" +
           anchor_name(anchor) + "\" dominant-baseline=\"middle\" fill=\"" + to_hex(color) + "\"";
  if (vertical) body_ += " transform=\"rotate(-90 " + num(x) + " " + num(y) + ")\"";
  body_ += ">" + xml_escape(text) + "</text>\n";
}

double SvgCanvas::text_width(const std::string& text, double size) const {
  return 0.58 * size * static_cast<double>(text.size());  // average sans-serif advance
}

void SvgCanvas::begin_group(const std::string& name) {
  body_ += "<g class=\"series\"><title>" + xml_escape(name) + "</title>\n";
}
void SvgCanvas::end_group() { body_ += "</g>\n"; }

std::string SvgCanvas::str() const {
  const std::string w = std::to_string(width_), h = std::to_string(height_);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w +
         " " + h + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" + body_ + "</svg>\n";
}

// ---------------------------------------------------------------- raster

RasterCanvas::RasterCanvas(int width, int height, Rgb background) : width_(width), height_(height) {
  require(width > 0 && height > 0 && width <= 16384 && height <= 16384,
          "PNG plot size " + std::to_string(width) + "x" + std::to_string(height) +
              " is out of range; use 1..16384 pixels per side");
  rgb_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

Rgb RasterCanvas::pixel(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {rgb_.at(i), rgb_.at(i + 1), rgb_.at(i + 2)};
}

void RasterCanvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  rgb_[i] = c.r;
  rgb_[i + 1] = c.g;
  rgb_[i + 2] = c.b;
}

void RasterCanvas::disc(double cx, double cy, double radius, Rgb c) {
  const int x0 = static_cast<int>(std::floor(cx - radius)), x1 = static_cast<int>(std::ceil(cx + radius));
  const int y0 = static_cast<int>(std::floor(cy - radius)), y1 = static_cast<int>(std::ceil(cy + radius));
  const double r2 = radius * radius;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r2) set(x, y, c);
    }
}

void RasterCanvas::polyline(const std::vector<std::pair<double, double>>& points, Rgb color, double width,
                            bool dashed) {
  // Stamps a disc (or a single pixel for thin lines) every half pixel along the path; dashes 6w on, 4w off,
  // continuous across vertices.
  const double radius = std::max(0.5, width / 2.0);
  const double on = 6.0 * width, period = 10.0 * width;
  double travelled = 0.0;
  for (size_t i = 1; i < points.size(); ++i) {
    const double x0 = points[i - 1].first, y0 = points[i - 1].second;
    const double dx = points[i].first - x0, dy = points[i].second - y0;
    const double len = std::hypot(dx, dy);
    const int steps = std::max(1, static_cast<int>(std::ceil(len * 2.0)));
    for (int s = 0; s <= steps; ++s) {
      const double t = static_cast<double>(s) / steps;
      if (dashed && std::fmod(travelled + t * len, period) >= on) continue;
      const double x = x0 + t * dx, y = y0 + t * dy;
      if (width <= 1.5)
        set(static_cast<int>(std::floor(x)), static_cast<int>(std::floor(y)), color);
      else
        disc(x, y, radius, color);
    }
    travelled += len;
  }
}

void RasterCanvas::circle(double cx, double cy, double radius, Rgb fill) { disc(cx, cy, radius, fill); }

void RasterCanvas::rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke) {
  const int x0 = static_cast<int>(std::lround(x)), y0 = static_cast<int>(std::lround(y));
  const int x1 = static_cast<int>(std::lround(x + w)), y1 = static_cast<int>(std::lround(y + h));
  if (fill)
    for (int yy = y0; yy < y1; ++yy)
      for (int xx = x0; xx < x1; ++xx) set(xx, yy, *fill);
  if (stroke) {
    for (int xx = x0; xx < x1; ++xx) {
      set(xx, y0, *stroke);
      set(xx, y1 - 1, *stroke);
    }
    for (int yy = y0; yy < y1; ++yy) {
      set(x0, yy, *stroke);
      set(x1 - 1, yy, *stroke);
    }
  }
}

int RasterCanvas::font_scale(double size) const {
  return std::max(1, static_cast<int>(std::lround(size / 8.0)));
}

double RasterCanvas::text_width(const std::string& text, double size) const {
  if (text.empty()) return 0.0;
  const int s = font_scale(size);
  return static_cast<double>(text.size() * kGlyphAdvance * s - s);
}

void RasterCanvas::text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
                        bool vertical) {
  const int s = font_scale(size);
  const double w = text_width(text, size);
  // u runs along the text from its start, v down across it from its top.
  const double start = anchor == Anchor::Start ? 0.0 : anchor == Anchor::Middle ? -w / 2 : -w;
  const double top = -(kGlyphHeight - 1) * s / 2.0;  // centre the 7 rows above the baseline
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* g = glyph5x7(text[i]);
    for (int col = 0; col < kGlyphWidth; ++col)
      for (int row = 0; row < kGlyphHeight; ++row) {
        if (!((g[col] >> row) & 1)) continue;
        for (int a = 0; a < s; ++a)
          for (int b = 0; b < s; ++b) {
            const double u = start + static_cast<double>((i * kGlyphAdvance + col) * s + a);
            const double v = top + row * s + b;
            if (vertical)
              set(static_cast<int>(std::lround(x + v)), static_cast<int>(std::lround(y - u)), color);
            else
              set(static_cast<int>(std::lround(x + u)), static_cast<int>(std::lround(y + v)), color);
          }
      }
  }
}

std::string RasterCanvas::encode_png() const {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width_);
  image.height = static_cast<png_uint_32>(height_);
  image.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, rgb_.data(), 0, nullptr))
    throw UserError(std::string("PNG encoding failed: ") + image.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, rgb_.data(), 0, nullptr))
    throw UserError(std::string("PNG encoding failed: ") + image.message);
  out.resize(size);
  png_image_free(&image);
  return out;
}

}  // namespace nfscale::report
