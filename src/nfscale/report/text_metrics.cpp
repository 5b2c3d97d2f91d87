// text_metrics.cpp - pango text measurement without a drawing surface (unhinted metrics, so sizes scale exactly).
#include "nfscale/report/text_metrics.h"

#include <glib.h>
#include <pango/pangocairo.h>


namespace nfscale::report {
namespace {

// One pango context per thread (pango objects are not thread-safe), with hinting off so widths do not depend
// on the output device.
PangoContext* measuring_context() {
  struct Holder {
    PangoContext* ctx = nullptr;
    ~Holder() {
      if (ctx) g_object_unref(ctx);
    }
  };
  thread_local Holder h;
  if (!h.ctx) {
    h.ctx = pango_font_map_create_context(pango_cairo_font_map_get_default());
    use_unhinted_metrics(h.ctx);
  }
  return h.ctx;
}

}  // namespace

void use_unhinted_metrics(PangoContext* ctx) {
  cairo_font_options_t* opts = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(opts, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(opts, CAIRO_HINT_STYLE_NONE);
  pango_cairo_context_set_font_options(ctx, opts);
  cairo_font_options_destroy(opts);
  pango_context_set_round_glyph_positions(ctx, FALSE);
}

PangoLayout* plot_text_layout(PangoContext* ctx, const std::string& text, double size_px) {
  PangoLayout* layout = pango_layout_new(ctx);
  PangoFontDescription* font = pango_font_description_from_string(kPlotFontFamily);
  pango_font_description_set_absolute_size(font, size_px * PANGO_SCALE);
  pango_layout_set_font_description(layout, font);
  pango_font_description_free(font);
  const std::string t = valid_utf8(text);
  pango_layout_set_text(layout, t.data(), static_cast<int>(t.size()));
  return layout;
}

std::string valid_utf8(const std::string& text) {
  if (g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) return text;
  gchar* fixed = g_utf8_make_valid(text.data(), static_cast<gssize>(text.size()));
  std::string out(fixed);
  g_free(fixed);
  return out;
}

std::string resolved_plot_font() {
  PangoFontDescription* want = pango_font_description_from_string(kPlotFontFamily);
  pango_font_description_set_absolute_size(want, 12 * PANGO_SCALE);
  PangoFont* font = pango_font_map_load_font(pango_cairo_font_map_get_default(), measuring_context(), want);
  std::string family;
  if (font) {
    PangoFontDescription* got = pango_font_describe(font);
    const char* f = pango_font_description_get_family(got);
    family = f ? f : "";
    pango_font_description_free(got);
    g_object_unref(font);
  }
  pango_font_description_free(want);
  return family;
}

TextExtent measure_text(const std::string& text, double size_px) {
  if (text.empty()) return {0.0, 0.0, 0.0};
  PangoLayout* layout = plot_text_layout(measuring_context(), text, size_px);
  PangoRectangle logical;
  pango_layout_get_extents(layout, nullptr, &logical);
  TextExtent e{static_cast<double>(logical.width) / PANGO_SCALE, static_cast<double>(logical.height) / PANGO_SCALE,
               static_cast<double>(pango_layout_get_baseline(layout)) / PANGO_SCALE};
  g_object_unref(layout);
  return e;
}

}  // namespace nfscale::report
