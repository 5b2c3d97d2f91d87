// weights_test_util.h - helpers for the weights tests: fresh temp directories, raw file bytes, hand-made safetensors
// files, the timm fixture folder (NFSCALE_SOURCE_DIR/../shared/fixtures/timm), running the binary and the Python
// read-back check.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace nfscale::weights::testing {
namespace fs = std::filesystem;

// A new empty directory under the temp dir, unique per process and name.
inline std::string fresh_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nfscale_weights_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a header text and data bytes, exactly as given (no checks): for bad-input tests.
inline std::string raw_safetensors(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

// The timm fixture folder of `name` (e.g. "nfnet-mini-f0"), or "" when shared/ is not beside the source tree.
inline std::string timm_fixture(const std::string& name) {
  const fs::path p = fs::path(NFSCALE_SOURCE_DIR) / ".." / "shared" / "fixtures" / "timm" / name;
  return fs::exists(p / "weights.safetensors") ? p.lexically_normal().string() : std::string();
}

}  // namespace nfscale::weights::testing

#include <array>
#include <cstdio>
#include <cstring>
#include <sys/wait.h>

#include <torch/types.h>

#include "nfscale/util/error.h"

namespace nfscale::weights::testing {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command line (stdout and stderr captured together).
inline RunResult run_command(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The message of the UserError `f` throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// Same dtype, element count and bytes (NaN payloads included).
inline bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.numel() != b.numel()) return false;
  auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

// The nfscale binary of this build.
inline std::string nfscale_bin() { return std::string(NFSCALE_BINARY_DIR) + "/bin/nfscale --threads 1"; }

// tests/weights/read_back.py run by Debian's python3 (python3-torch, the header parsed by hand, no safetensors
// package) on an exported file against the timm fixture folder `fixture`: timm's names and shapes (model.json) and
// timm's tensors bit for bit (weights.safetensors). Prints "python-ok N" on success.
inline RunResult python_read_back(const std::string& exported, const std::string& fixture) {
  return run_command("/usr/bin/python3 " + std::string(NFSCALE_SOURCE_DIR) + "/tests/weights/read_back.py " + exported +
                     " " + fixture + "/model.json " + fixture + "/weights.safetensors");
}

}  // namespace nfscale::weights::testing
