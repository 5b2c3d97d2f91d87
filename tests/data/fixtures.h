// fixtures.h - test helpers for the data tests: a fresh temp directory and writers for generated IDX/CIFAR files.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace nfscale::data::testing {

inline std::filesystem::path fresh_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("nfscale_data_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(p.string().c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return;
  }
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

// IDX image file bytes: n images h x w; pixel(i, y, x) = (i * 7 + y * 3 + x) % 256.
inline std::string idx_images(uint32_t n, uint32_t h, uint32_t w, uint32_t magic = 0x803) {
  std::string b = be32(magic) + be32(n) + be32(h) + be32(w);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) b.push_back(char((i * 7 + y * 3 + x) % 256));
  return b;
}
inline std::string idx_labels(const std::vector<uint8_t>& labels, uint32_t magic = 0x801) {
  std::string b = be32(magic) + be32(static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) b.push_back(char(l));
  return b;
}

}  // namespace nfscale::data::testing
