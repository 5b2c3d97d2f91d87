// image_codec.h - JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory to planar uint8 Images, and encoders
// (used by tests to generate fixtures, and by anyone who needs to write an image). Corrupt or truncated input throws
// UserError naming `name` (usually the file path).
#pragma once
#include <string>
#include <string_view>

#include "nfscale/data/image.h"

namespace nfscale::data {

enum class ImageFormat { kUnknown, kJpeg, kPng };

// Format from the leading magic bytes (JPEG FF D8 FF, PNG 89 'PNG' 0D 0A 1A 0A).
ImageFormat sniff_format(std::string_view bytes);

// Cheap structural check without decoding: correct magic and the format's end marker present (JPEG ends with
// FF D9, PNG with an IEND chunk). Returns "" when fine, else what is wrong (e.g. "truncated: no JPEG end marker").
std::string check_image_structure(std::string_view head, std::string_view tail, ImageFormat expected);

// Decodes; the result has 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) channels as stored in the file.
// Warnings from libjpeg (e.g. "premature end of data") are treated as errors: never train on grey-filled garbage.
Image decode_jpeg(std::string_view bytes, const std::string& name);
Image decode_png(std::string_view bytes, const std::string& name);
Image decode_image(std::string_view bytes, const std::string& name);  // by magic bytes

// Encoders for 1- or 3-channel images (PNG also 2/4). Return the file bytes.
std::string encode_png(const Image& image);
std::string encode_jpeg(const Image& image, int quality = 95);

}  // namespace nfscale::data
