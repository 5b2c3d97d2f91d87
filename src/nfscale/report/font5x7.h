// font5x7.h - a 5x7 bitmap font (plus a descender row) for printable ASCII, drawn by the PNG rasteriser.
#pragma once
#include <cstdint>

namespace nfscale::report {

constexpr int kGlyphWidth = 5;   // columns per glyph
constexpr int kGlyphHeight = 8;  // rows per glyph: 7 above the baseline, 1 descender row (g j p q y)
constexpr int kGlyphAdvance = 6; // columns from one glyph to the next (one blank column)

// Five column bytes for `c` (bit r of column x set = pixel at row r from the top, column x). Characters outside
// ' '..'~' render as '?'.
const uint8_t* glyph5x7(char c);

}  // namespace nfscale::report
