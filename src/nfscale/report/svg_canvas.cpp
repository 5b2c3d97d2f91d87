// svg_canvas.cpp - SVG text output of the plot canvas.
#include "nfscale/report/svg_canvas.h"

#include <cstdio>

#include "nfscale/report/text_metrics.h"

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

std::string points_attr(const PixelPath& points) {
  std::string out;
  for (size_t i = 0; i < points.size(); ++i)
    out += (i ? " " : "") + num(points[i].first) + "," + num(points[i].second);
  return out;
}

}  // namespace

std::string to_hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string xml_escape(const std::string& text) {
  const std::string valid = valid_utf8(text);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
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

SvgCanvas::SvgCanvas(int width, int height) : width_(width), height_(height) {}

void SvgCanvas::polyline(const PixelPath& points, Rgb color, double width, bool dashed) {
  if (points.size() < 2) return;
  body_ += "<polyline fill=\"none\" stroke=\"" + to_hex(color) + "\" stroke-width=\"" + num(width) + "\"";
  if (dashed) body_ += " stroke-dasharray=\"" + num(3.7 * width) + "," + num(1.6 * width) + "\"";
  body_ += " stroke-linejoin=\"round\" points=\"" + points_attr(points) + "\"/>\n";
}

void SvgCanvas::polygon(const PixelPath& points, Rgb fill, double opacity) {
  if (points.size() < 3) return;
  body_ += "<polygon fill=\"" + to_hex(fill) + "\" fill-opacity=\"" + num(opacity) + "\" stroke=\"none\" points=\"" +
           points_attr(points) + "\"/>\n";
}

void SvgCanvas::marker(double cx, double cy, double radius, Rgb fill, const std::string& tooltip) {
  body_ += "<circle class=\"pt\" cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(radius) + "\" fill=\"" +
           to_hex(fill) + "\" stroke=\"#ffffff\" stroke-width=\"" + num(radius / 4) + "\"";
  body_ += tooltip.empty() ? "/>\n" : "><title>" + xml_escape(tooltip) + "</title></circle>\n";
}

void SvgCanvas::rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke,
                     double stroke_width) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + (fill ? to_hex(*fill) : "none") + "\"";
  if (stroke) body_ += " stroke=\"" + to_hex(*stroke) + "\" stroke-width=\"" + num(stroke_width) + "\"";
  body_ += "/>\n";
}

void SvgCanvas::text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
                     bool vertical) {
  // Baseline placed from pango's metrics of the same font, so the line box is centred on y as in the cairo output.
  const TextExtent e = measure_text(text, size);
  const double shift = e.baseline - e.height / 2;
  const char* anchor_name = anchor == Anchor::Start ? "start" : anchor == Anchor::Middle ? "middle" : "end";
  const double bx = vertical ? x + shift : x, by = vertical ? y : y + shift;
  body_ += "<text x=\"" + num(bx) + "\" y=\"" + num(by) + "\" font-size=\"" + num(size) + "\" text-anchor=\"" +
           anchor_name + "\" fill=\"" + to_hex(color) + "\"";
  if (vertical) body_ += " transform=\"rotate(-90 " + num(bx) + " " + num(by) + ")\"";
  body_ += ">" + xml_escape(text) + "</text>\n";
}

double SvgCanvas::text_width(const std::string& text, double size) const { return measure_text(text, size).width; }

void SvgCanvas::begin_group(const std::string& name) {
  body_ += "<g class=\"series\"><title>" + xml_escape(name) + "</title>\n";
}
void SvgCanvas::end_group() { body_ += "</g>\n"; }

std::string SvgCanvas::str() const {
  const std::string w = std::to_string(width_), h = std::to_string(height_);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w +
         " " + h + "\" font-family=\"" + kPlotFontFamily + ", Helvetica, Arial, sans-serif\">\n" + body_ +
         "</svg>\n";
}

}  // namespace nfscale::report
