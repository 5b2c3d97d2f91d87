// image_codec.cpp - JPEG via libjpeg-turbo (setjmp error handling, warnings promoted to errors) and PNG via
// libpng's simplified memory API; interleaved <-> planar conversion.
#include "nfscale/data/image_codec.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "nfscale/util/error.h"

namespace nfscale::data {
namespace {

// Interleaved HWC -> planar CHW.
void deinterleave(const uint8_t* hwc, Image& out) {
  const int64_t c = out.channels, hw = out.height * out.width;
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t k = 0; k < c; ++k) out.pixels[static_cast<size_t>(k * hw + i)] = hwc[i * c + k];
}

std::vector<uint8_t> interleave(const Image& img) {
  const int64_t c = img.channels, hw = img.height * img.width;
  std::vector<uint8_t> hwc(static_cast<size_t>(c * hw));
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t k = 0; k < c; ++k) hwc[static_cast<size_t>(i * c + k)] = img.pixels[static_cast<size_t>(k * hw + i)];
  return hwc;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  int warnings = 0;
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_message(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  if (level < 0) {  // a warning: corrupt data that libjpeg would paper over
    if (err->warnings++ == 0) (*cinfo->err->format_message)(cinfo, err->message);
  }
}

}  // namespace

ImageFormat sniff_format(std::string_view b) {
  if (b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF) return ImageFormat::kJpeg;
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.size() >= 8 && std::memcmp(b.data(), kPng, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

std::string check_image_structure(std::string_view head, std::string_view tail, ImageFormat expected) {
  ImageFormat got = sniff_format(head);
  if (got == ImageFormat::kUnknown) return "not a JPEG or PNG file (bad magic bytes)";
  if (expected != ImageFormat::kUnknown && got != expected) return "file content does not match its extension";
  if (got == ImageFormat::kJpeg) {
    // Some encoders pad after EOI; accept FF D9 within the last 16 bytes.
    for (size_t i = tail.size(); i >= 2; --i)
      if (uint8_t(tail[i - 2]) == 0xFF && uint8_t(tail[i - 1]) == 0xD9) return "";
    return "truncated: no JPEG end-of-image marker (FF D9)";
  }
  if (tail.size() < 8 || std::memcmp(tail.data() + tail.size() - 8, "IEND", 4) != 0)
    return "truncated: no PNG IEND chunk at the end";
  return "";
}

Image decode_jpeg(std::string_view bytes, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  // The pixel buffer lives on the heap behind a pointer that is not modified after setjmp, so it stays valid
  // (and is freed) after a longjmp.
  auto hwc = std::make_unique<std::vector<uint8_t>>();
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw UserError(name + ": corrupt JPEG (" + err.message + "); remove or re-encode the file, or set skip_bad");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int64_t w = cinfo.output_width, h = cinfo.output_height, c = cinfo.output_components;
  hwc->resize(static_cast<size_t>(w * h * c));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = hwc->data() + static_cast<size_t>(cinfo.output_scanline) * w * c;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (err.warnings > 0)
    throw UserError(name + ": corrupt or truncated JPEG (" + err.message + "); remove or re-encode the file, or set skip_bad");
  Image out(c, h, w);
  deinterleave(hwc->data(), out);
  return out;
}

Image decode_png(std::string_view bytes, const std::string& name) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    throw UserError(name + ": corrupt PNG (" + img.message + "); remove or re-encode the file, or set skip_bad");
  int64_t c = 0;
  const bool alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  if (img.format & PNG_FORMAT_FLAG_COLOR) {
    img.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    c = alpha ? 4 : 3;
  } else {
    img.format = alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY;
    c = alpha ? 2 : 1;
  }
  std::vector<uint8_t> hwc(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, hwc.data(), 0, nullptr)) {
    std::string msg = img.message;
    png_image_free(&img);
    throw UserError(name + ": corrupt or truncated PNG (" + msg + "); remove or re-encode the file, or set skip_bad");
  }
  Image out(c, img.height, img.width);
  deinterleave(hwc.data(), out);
  return out;
}

Image decode_image(std::string_view bytes, const std::string& name) {
  switch (sniff_format(bytes)) {
    case ImageFormat::kJpeg: return decode_jpeg(bytes, name);
    case ImageFormat::kPng: return decode_png(bytes, name);
    default: throw UserError(name + ": not a JPEG or PNG file (bad magic bytes); remove it or set skip_bad");
  }
}

std::string encode_png(const Image& image) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(image.width);
  img.height = static_cast<png_uint_32>(image.height);
  static const png_uint_32 kFormats[5] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  if (image.channels < 1 || image.channels > 4) throw std::invalid_argument("encode_png: 1..4 channels");
  img.format = kFormats[image.channels];
  auto hwc = interleave(image);
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(img, size, 0, hwc.data(), 0, nullptr))
    throw std::runtime_error(std::string("encode_png: ") + img.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&img, out.data(), &size, 0, hwc.data(), 0, nullptr))
    throw std::runtime_error(std::string("encode_png: ") + img.message);
  out.resize(size);
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  if (image.channels != 1 && image.channels != 3) throw std::invalid_argument("encode_jpeg: 1 or 3 channels");
  auto hwc = interleave(image);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);  // encoding our own buffers cannot fail except on OOM (libjpeg exits)
  jpeg_create_compress(&cinfo);
  unsigned char* mem = nullptr;
  unsigned long mem_size = 0;
  jpeg_mem_dest(&cinfo, &mem, &mem_size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = static_cast<int>(image.channels);
  cinfo.in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = hwc.data() + static_cast<size_t>(cinfo.next_scanline) * image.width * image.channels;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(mem), mem_size);
  jpeg_destroy_compress(&cinfo);
  std::free(mem);
  return out;
}

}  // namespace nfscale::data
