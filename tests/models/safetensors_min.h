// safetensors_min.h - a minimal safetensors reader for the ViT fixture test only (8-byte little-endian header length,
// JSON header, raw F32 data); the project's full reader is the weights/ area of branch intr, which replaces this once
// merged.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace nfscale::models::testing {

// name -> F32 tensor (cloned). Fails the test (throws std::runtime_error) on anything but F32 entries in range.
inline std::map<std::string, torch::Tensor> read_f32_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() < 8) throw std::runtime_error(path + ": shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (8 + n > bytes.size()) throw std::runtime_error(path + ": header longer than the file");
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  const char* data = bytes.data() + 8 + n;
  const size_t data_len = bytes.size() - 8 - n;
  std::map<std::string, torch::Tensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    if (it.value().at("dtype") != "F32") throw std::runtime_error(path + ": " + it.key() + " is not F32");
    const auto shape = it.value().at("shape").get<std::vector<int64_t>>();
    const auto off = it.value().at("data_offsets").get<std::vector<size_t>>();
    auto t = torch::empty(shape, torch::kFloat);
    if (off.size() != 2 || off[1] > data_len || off[1] - off[0] != static_cast<size_t>(t.numel()) * 4)
      throw std::runtime_error(path + ": bad data_offsets for " + it.key());
    std::memcpy(t.data_ptr<float>(), data + off[0], off[1] - off[0]);  // little-endian host (x86-64)
    out[it.key()] = t;
  }
  return out;
}

}  // namespace nfscale::models::testing
