// report_test_util.h - helpers shared by the report tests: XML tag balance, PNG decoding with libpng, counting.
#pragma once
#include <png.h>

#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "nfscale/report/cairo_canvas.h"

namespace nfscale::report::testing {

inline size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

// Checks that every element opened is closed in order (self-closing tags allowed); returns the first problem.
inline std::string tag_balance_problem(const std::string& xml) {
  std::vector<std::string> stack;
  std::regex tag(R"(<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*?(/?)>)");
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), tag); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    const std::string name = m[2];
    if (m[1] == "/") {
      if (stack.empty() || stack.back() != name) return "unexpected </" + name + ">";
      stack.pop_back();
    } else if (m[3] != "/") {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

// Decodes a PNG file with libpng (independently of cairo, which wrote it) into RGB.
inline Image decode_png_file(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) throw std::runtime_error(img.message);
  img.format = PNG_FORMAT_RGB;
  Image out;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) throw std::runtime_error(img.message);
  return out;
}

}  // namespace nfscale::report::testing
