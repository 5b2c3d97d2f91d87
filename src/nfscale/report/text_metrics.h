// text_metrics.h - text measurement with pango and the plot font (DejaVu Sans), shared by the SVG and cairo
// canvases so both lay a plot out identically.
#pragma once
#include <string>

struct _PangoContext;  // pango's PangoContext and PangoLayout; pango headers stay in the .cpp files
struct _PangoLayout;

namespace nfscale::report {

// The font family plots use (Debian fonts-dejavu-core); SVG output names it first in its font-family list.
inline constexpr const char* kPlotFontFamily = "DejaVu Sans";

// The logical box of one line of text at a font size of `size_px` pixels: width and height in pixels, and the
// baseline's distance from the top of the box.
struct TextExtent {
  double width = 0, height = 0, baseline = 0;
};
TextExtent measure_text(const std::string& text, double size_px);

// The family of the font pango actually uses for kPlotFontFamily (a fallback such as "Liberation Sans" if
// fonts-dejavu-core is missing).
std::string resolved_plot_font();

// For the cairo canvas: makes `ctx` measure like measure_text (unhinted metrics, unrounded glyph positions), and
// a new layout of one line of `text` in the plot font at `size_px` pixels (the caller unrefs it).
void use_unhinted_metrics(_PangoContext* ctx);
_PangoLayout* plot_text_layout(_PangoContext* ctx, const std::string& text, double size_px);

// `text` with invalid UTF-8 sequences replaced by U+FFFD (pango and XML need valid UTF-8).
std::string valid_utf8(const std::string& text);

}  // namespace nfscale::report
