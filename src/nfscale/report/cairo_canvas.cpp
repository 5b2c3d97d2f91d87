// cairo_canvas.cpp - cairo/pango back end of the plot canvas: PNG and PDF output, pixels for tests.
#include "nfscale/report/cairo_canvas.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "nfscale/report/text_metrics.h"
#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

constexpr double kPdfPointsPerPixel = 0.75;  // 72 pt per inch / 96 px per inch

void set_color(cairo_t* cr, Rgb c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

void trace(cairo_t* cr, const PixelPath& points) {
  cairo_new_path(cr);
  for (size_t i = 0; i < points.size(); ++i)
    (i ? cairo_line_to : cairo_move_to)(cr, points[i].first, points[i].second);
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

Rgb Image::pixel(int x, int y) const {
  if (x < 0 || y < 0 || x >= width || y >= height)
    throw std::out_of_range("pixel (" + std::to_string(x) + ", " + std::to_string(y) + ") outside the image");
  const size_t i = (static_cast<size_t>(y) * width + x) * 3;
  return {rgb[i], rgb[i + 1], rgb[i + 2]};
}

struct CairoCanvas::State {
  Target target;
  int width, height;
  std::string pdf;  // PDF bytes, appended by cairo's stream callback
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
  bool finished = false;
};

CairoCanvas::CairoCanvas(Target target, int width, int height) : s_(std::make_unique<State>()) {
  require(width > 0 && height > 0 && width <= 16384 && height <= 16384,
          "figure size " + std::to_string(width) + "x" + std::to_string(height) +
              " is out of range; use 1..16384 pixels per side");
  s_->target = target;
  s_->width = width;
  s_->height = height;
  if (target == Target::Image) {
    s_->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  } else {
    s_->surface = cairo_pdf_surface_create_for_stream(append_to_string, &s_->pdf, width * kPdfPointsPerPixel,
                                                      height * kPdfPointsPerPixel);
  }
  s_->cr = cairo_create(s_->surface);
  if (cairo_status(s_->cr) != CAIRO_STATUS_SUCCESS)
    throw UserError(std::string("cairo could not create a ") + std::to_string(width) + "x" + std::to_string(height) +
                    " canvas: " + cairo_status_to_string(cairo_status(s_->cr)));
  if (target == Target::Pdf) cairo_scale(s_->cr, kPdfPointsPerPixel, kPdfPointsPerPixel);
  cairo_set_antialias(s_->cr, CAIRO_ANTIALIAS_BEST);
  cairo_set_line_join(s_->cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_source_rgb(s_->cr, 1, 1, 1);
  cairo_paint(s_->cr);
}

CairoCanvas::~CairoCanvas() {
  if (s_->cr) cairo_destroy(s_->cr);
  if (s_->surface) cairo_surface_destroy(s_->surface);
}

void CairoCanvas::polyline(const PixelPath& points, Rgb color, double width, bool dashed) {
  if (points.size() < 2) return;
  cairo_t* cr = s_->cr;
  trace(cr, points);
  set_color(cr, color);
  cairo_set_line_width(cr, width);
  if (dashed) {
    const double dash[2] = {3.7 * width, 1.6 * width};
    cairo_set_dash(cr, dash, 2, 0);
  }
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
}

void CairoCanvas::polygon(const PixelPath& points, Rgb fill, double opacity) {
  if (points.size() < 3) return;
  trace(s_->cr, points);
  cairo_close_path(s_->cr);
  set_color(s_->cr, fill, opacity);
  cairo_fill(s_->cr);
}

void CairoCanvas::marker(double cx, double cy, double radius, Rgb fill, const std::string&) {
  cairo_t* cr = s_->cr;
  cairo_new_path(cr);
  cairo_arc(cr, cx, cy, radius, 0, 2 * M_PI);
  set_color(cr, fill);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, radius / 4);
  cairo_stroke(cr);
}

void CairoCanvas::rect(double x, double y, double w, double h, std::optional<Rgb> fill, std::optional<Rgb> stroke,
                       double stroke_width) {
  cairo_t* cr = s_->cr;
  cairo_new_path(cr);
  cairo_rectangle(cr, x, y, w, h);
  if (fill) {
    set_color(cr, *fill);
    cairo_fill_preserve(cr);
  }
  if (stroke) {
    set_color(cr, *stroke);
    cairo_set_line_width(cr, stroke_width);
    cairo_stroke_preserve(cr);
  }
  cairo_new_path(cr);
}

void CairoCanvas::text(double x, double y, const std::string& text, double size, Anchor anchor, Rgb color,
                       bool vertical) {
  if (text.empty()) return;
  cairo_t* cr = s_->cr;
  PangoContext* ctx = pango_cairo_create_context(cr);
  use_unhinted_metrics(ctx);
  PangoLayout* layout = plot_text_layout(ctx, text, size);
  PangoRectangle logical;
  pango_layout_get_extents(layout, nullptr, &logical);
  const double w = static_cast<double>(logical.width) / PANGO_SCALE;
  const double h = static_cast<double>(logical.height) / PANGO_SCALE;
  const double along = anchor == Anchor::Start ? 0.0 : anchor == Anchor::Middle ? -w / 2 : -w;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (vertical) cairo_rotate(cr, -M_PI / 2);
  cairo_move_to(cr, along, -h / 2);
  set_color(cr, color);
  pango_cairo_show_layout(cr, layout);
  cairo_restore(cr);
  g_object_unref(layout);
  g_object_unref(ctx);
}

double CairoCanvas::text_width(const std::string& text, double size) const { return measure_text(text, size).width; }

Image CairoCanvas::pixels() const {
  require(s_->target == Target::Image, "CairoCanvas::pixels() needs an image canvas, not a PDF one");
  cairo_surface_flush(s_->surface);
  Image img;
  img.width = s_->width;
  img.height = s_->height;
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  const unsigned char* data = cairo_image_surface_get_data(s_->surface);
  const int stride = cairo_image_surface_get_stride(s_->surface);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      uint32_t px;  // CAIRO_FORMAT_RGB24: native-endian 0x00RRGGBB
      std::memcpy(&px, data + static_cast<size_t>(y) * stride + 4 * x, 4);
      uint8_t* out = &img.rgb[(static_cast<size_t>(y) * img.width + x) * 3];
      out[0] = (px >> 16) & 0xFF;
      out[1] = (px >> 8) & 0xFF;
      out[2] = px & 0xFF;
    }
  return img;
}

std::string CairoCanvas::png() const {
  require(s_->target == Target::Image, "CairoCanvas::png() needs an image canvas, not a PDF one");
  cairo_surface_flush(s_->surface);
  std::string out;
  const cairo_status_t st = cairo_surface_write_to_png_stream(s_->surface, append_to_string, &out);
  if (st != CAIRO_STATUS_SUCCESS) throw UserError(std::string("PNG encoding failed: ") + cairo_status_to_string(st));
  return out;
}

std::string CairoCanvas::finish_pdf() {
  require(s_->target == Target::Pdf && !s_->finished, "CairoCanvas::finish_pdf() needs an unfinished PDF canvas");
  cairo_surface_finish(s_->surface);
  s_->finished = true;
  const cairo_status_t st = cairo_surface_status(s_->surface);
  if (st != CAIRO_STATUS_SUCCESS) throw UserError(std::string("PDF output failed: ") + cairo_status_to_string(st));
  return std::move(s_->pdf);
}

}  // namespace nfscale::report
