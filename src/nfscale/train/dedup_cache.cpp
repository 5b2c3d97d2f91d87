// dedup_cache.cpp - the on-disk cache of near-duplicate removals (see dedup_cache.h).
#include "nfscale/train/dedup_cache.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "nfscale/data/dataset.h"
#include "nfscale/data/dedup.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/rng.h"

namespace nfscale::train {
namespace {

// Bump when the removal's result changes for the same inputs (hash, pixel check, record format).
constexpr uint64_t kAlgorithmVersion = 1;

namespace fs = std::filesystem;

void mix_bytes(uint64_t& h, const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = mix64(h ^ w);
  }
  uint64_t tail = n;
  for (; i < n; ++i) tail = (tail << 8) | p[i];
  h = mix64(h ^ tail);
}

void mix_value(uint64_t& h, uint64_t v) { h = mix64(h ^ mix64(v + 0x9e3779b97f4a7c15ull)); }

void mix_dataset(uint64_t& h, const data::Dataset& d) {
  mix_value(h, static_cast<uint64_t>(d.size()));
  for (int64_t i = 0; i < d.size(); ++i) {
    const data::Image im = d.load(i).image;
    mix_value(h, static_cast<uint64_t>(im.channels * 1000003 + im.height * 1009 + im.width));
    mix_bytes(h, im.pixels.data(), im.pixels.size());
  }
}

void mix_indices(uint64_t& h, const std::vector<int64_t>& v) {
  mix_value(h, v.size());
  mix_bytes(h, reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(int64_t));
}

std::string path_of(const std::string& key) { return (fs::path(cache_dir()) / "dedup" / (key + ".json")).string(); }

}  // namespace

std::string cache_dir() {
  if (const char* d = std::getenv("NFSCALE_CACHE_DIR"); d && *d) return std::string(d) == "off" ? "" : d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "nfscale").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".cache" / "nfscale").string();
  return "";
}

std::string dedup_cache_key(const data::Dataset& train, const std::vector<int64_t>& train_indices,
                            const std::vector<int64_t>& holdout_indices, const data::Dataset* test,
                            const data::DedupOptions& options) {
  uint64_t h = mix64(kAlgorithmVersion);
  mix_dataset(h, train);
  mix_indices(h, train_indices);
  mix_indices(h, holdout_indices);
  mix_value(h, test != nullptr);
  if (test) mix_dataset(h, *test);
  const std::string opts = data::to_json(options).dump();
  mix_bytes(h, reinterpret_cast<const uint8_t*>(opts.data()), opts.size());
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::optional<nlohmann::json> read_dedup_cache(const std::string& key) {
  if (cache_dir().empty()) return std::nullopt;
  const std::string path = path_of(key);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(path));
    if (j.value("cache_key", "") != key) return std::nullopt;
    return j;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable or half-written by an older version: recompute and overwrite
  }
}

void write_dedup_cache(const std::string& key, const nlohmann::json& record) {
  if (cache_dir().empty()) return;
  const std::string path = path_of(key);
  try {
    make_dirs(fs::path(path).parent_path().string());
    nlohmann::json j = record;
    j["cache_key"] = key;
    write_file_atomic(path, j.dump() + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[dedup] warning: could not cache the removal in %s (%s); it is recomputed next time\n",
                 path.c_str(), e.what());
  }
}

}  // namespace nfscale::train
