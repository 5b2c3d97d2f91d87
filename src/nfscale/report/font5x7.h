// font5x7.h - a 5x7 bitmap font for printable ASCII, used by the PNG rasteriser to draw plot text.
#pragma once
#include <cstdint>

namespace nfscale::report {

constexpr int kGlyphWidth = 5;   // columns per glyph
constexpr int kGlyphHeight = 7;  // rows per glyph
constexpr int kGlyphAdvance = 6; // columns from one glyph to the next (one blank column)

// Five column bytes for `c` (bit r of column x set = pixel at row r from the top, column x). Characters outside
// ' '..'~' render as '?'.
const uint8_t* glyph5x7(char c);

}  // namespace nfscale::report
