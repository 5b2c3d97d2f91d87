// dedup.cpp - perceptual hashes, multi-index Hamming search and the near-duplicate report (see dedup.h).
#include "nfscale/data/dedup.h"

#include <algorithm>
#include <bitset>
#include <cmath>
#include <nlohmann/json.hpp>
#include <queue>
#include <tuple>

#include "nfscale/data/dataset.h"
#include "nfscale/util/error.h"

namespace nfscale::data {
namespace {

constexpr int kChunks = 4;
constexpr int kChunkBits = 16;

// Area-resampling weights [dst x src]: output cell j covers source interval [j*src/dst, (j+1)*src/dst), each
// source pixel weighted by its overlap (a box filter when shrinking, linear-ish blending when enlarging).
std::vector<double> area_weights(int64_t src, int64_t dst) {
  std::vector<double> w(static_cast<size_t>(dst * src), 0.0);
  const double scale = static_cast<double>(src) / dst;
  for (int64_t j = 0; j < dst; ++j) {
    double lo = j * scale, hi = (j + 1) * scale;
    for (int64_t i = static_cast<int64_t>(std::floor(lo)); i < src && i < hi; ++i) {
      double overlap = std::min(hi, i + 1.0) - std::max(lo, static_cast<double>(i));
      if (overlap > 0) w[static_cast<size_t>(j * src + i)] = overlap / scale;
    }
  }
  return w;
}

// Luma of `image` resampled to [h x w] (row-major doubles, 0..255).
std::vector<double> grey_resampled(const Image& image, int64_t h, int64_t w) {
  require(!image.empty() && image.height > 0 && image.width > 0, "perceptual hash: the image is empty");
  require(image.channels >= 1 && image.channels <= 4,
          "perceptual hash: images with " + std::to_string(image.channels) + " channels are not supported (1-4)");
  Image grey = image.channels == 4 ? convert_channels(image, 3) : image;  // RGBA: drop alpha, then luma
  if (grey.channels != 1) grey = convert_channels(grey, 1);
  const int64_t H = grey.height, W = grey.width;
  std::vector<double> wy = area_weights(H, h), wx = area_weights(W, w);
  std::vector<double> rows(static_cast<size_t>(h * W), 0.0);  // [h x W]
  for (int64_t y = 0; y < h; ++y)
    for (int64_t sy = 0; sy < H; ++sy) {
      double a = wy[static_cast<size_t>(y * H + sy)];
      if (a == 0) continue;
      for (int64_t x = 0; x < W; ++x) rows[static_cast<size_t>(y * W + x)] += a * grey.at(0, sy, x);
    }
  std::vector<double> out(static_cast<size_t>(h * w), 0.0);  // [h x w]
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      double s = 0;
      for (int64_t sx = 0; sx < W; ++sx) s += wx[static_cast<size_t>(x * W + sx)] * rows[static_cast<size_t>(y * W + sx)];
      out[static_cast<size_t>(y * w + x)] = s;
    }
  return out;
}

uint64_t dct_hash(const Image& image) {
  constexpr int N = 32, K = 8;
  std::vector<double> px = grey_resampled(image, N, N);  // [32 x 32]
  static const std::vector<double> basis = [] {         // [8 x 32] DCT-II rows (unnormalised)
    std::vector<double> b(K * N);
    for (int k = 0; k < K; ++k)
      for (int n = 0; n < N; ++n) b[k * N + n] = std::cos(M_PI * (2 * n + 1) * k / (2.0 * N));
    return b;
  }();
  double tmp[K][N] = {};  // basis x px: [8 x 32]
  for (int k = 0; k < K; ++k)
    for (int y = 0; y < N; ++y) {
      double c = basis[k * N + y];
      for (int x = 0; x < N; ++x) tmp[k][x] += c * px[y * N + x];
    }
  std::vector<double> coef;  // the 8x8 low frequencies without DC, row-major: 63 values
  for (int k = 0; k < K; ++k)
    for (int l = 0; l < K; ++l) {
      if (k == 0 && l == 0) continue;
      double s = 0;
      for (int x = 0; x < N; ++x) s += tmp[k][x] * basis[l * N + x];
      coef.push_back(s);
    }
  std::vector<double> sorted = coef;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double median = sorted[sorted.size() / 2];
  uint64_t h = 0;
  for (size_t i = 0; i < coef.size(); ++i)
    if (coef[i] > median) h |= uint64_t{1} << i;
  return h;
}

uint64_t difference_hash(const Image& image) {
  std::vector<double> px = grey_resampled(image, 8, 9);  // [8 x 9]
  uint64_t h = 0;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x)
      if (px[y * 9 + x] > px[y * 9 + x + 1]) h |= uint64_t{1} << (y * 8 + x);
  return h;
}

void validate(const DedupOptions& o) {
  require(o.threshold >= 0 && o.threshold <= 32,
          "dedup --threshold " + std::to_string(o.threshold) +
              ": must be in 0..32 bits of the 64-bit hash (docs/data.md has the counts per threshold)");
  require(o.examples >= 0, "dedup --examples " + std::to_string(o.examples) + ": must be >= 0");
}

uint16_t chunk(uint64_t h, int c) { return static_cast<uint16_t>(h >> (c * kChunkBits)); }

// Calls f(v) for every 16-bit v within Hamming radius r of `center`.
template <class F>
void for_each_within(uint16_t center, int r, int first_bit, F&& f) {
  f(center);
  if (r == 0) return;
  for (int b = first_bit; b < kChunkBits; ++b)
    for_each_within(static_cast<uint16_t>(center ^ (1u << b)), r - 1, b + 1, f);
}

}  // namespace

const char* hash_kind_name(HashKind k) { return k == HashKind::Dct ? "dct" : "difference"; }

HashKind parse_hash_kind(const std::string& text, const std::string& field) {
  if (text == "dct" || text == "phash") return HashKind::Dct;
  if (text == "difference" || text == "dhash") return HashKind::Difference;
  throw UserError(field + ": unknown hash '" + text + "'; use dct (pHash) or difference (dHash)");
}

uint64_t perceptual_hash(const Image& image, HashKind kind) {
  return kind == HashKind::Dct ? dct_hash(image) : difference_hash(image);
}

int hamming(uint64_t a, uint64_t b) { return static_cast<int>(std::bitset<64>(a ^ b).count()); }

HashIndex::HashIndex(std::vector<uint64_t> hashes) : hashes_(std::move(hashes)), tables_(kChunks) {
  require(hashes_.size() < (size_t{1} << 31), "hash index: too many images (more than 2^31)");
  for (int c = 0; c < kChunks; ++c) {
    auto& t = tables_[static_cast<size_t>(c)];
    t.reserve(hashes_.size());
    for (size_t i = 0; i < hashes_.size(); ++i) t.emplace_back(chunk(hashes_[i], c), static_cast<int32_t>(i));
    std::sort(t.begin(), t.end());
  }
}

std::vector<int64_t> HashIndex::within(uint64_t query, int threshold) const {
  std::vector<int64_t> found;
  const int r = threshold / kChunks;  // pigeonhole: some chunk differs in at most floor(t / 4) bits
  for (int c = 0; c < kChunks; ++c) {
    const auto& t = tables_[static_cast<size_t>(c)];
    for_each_within(chunk(query, c), r, 0, [&](uint16_t v) {
      auto lo = std::lower_bound(t.begin(), t.end(), std::pair<uint16_t, int32_t>{v, INT32_MIN});
      for (auto it = lo; it != t.end() && it->first == v; ++it)
        if (hamming(hashes_[static_cast<size_t>(it->second)], query) <= threshold) found.push_back(it->second);
    });
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

std::vector<uint64_t> hash_dataset(const Dataset& dataset, const std::vector<int64_t>& indices, HashKind kind) {
  const int64_t n = indices.empty() ? dataset.size() : static_cast<int64_t>(indices.size());
  std::vector<uint64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t idx = indices.empty() ? i : indices[static_cast<size_t>(i)];
    out[static_cast<size_t>(i)] = perceptual_hash(dataset.load(idx).image, kind);
  }
  return out;
}

DedupReport dedup_hashes(const std::vector<uint64_t>& train, const std::vector<int64_t>& train_ids,
                         const std::vector<uint64_t>& other, const std::vector<int64_t>& other_ids,
                         const DedupOptions& options) {
  validate(options);
  require(train.size() == train_ids.size() && other.size() == other_ids.size(),
          "dedup: internal error, hashes and indices differ in length");
  DedupReport rep;
  rep.threshold = options.threshold;
  rep.kind = options.kind;
  rep.train_size = static_cast<int64_t>(train.size());
  rep.other_size = static_cast<int64_t>(other.size());
  rep.by_distance.assign(static_cast<size_t>(options.threshold + 1), 0);
  HashIndex index(other);
  std::vector<char> other_hit(other.size(), 0);
  auto worse = [](const DedupPair& a, const DedupPair& b) {  // heap top = the worst kept example
    return std::tie(a.distance, a.train_index, a.other_index) < std::tie(b.distance, b.train_index, b.other_index);
  };
  std::priority_queue<DedupPair, std::vector<DedupPair>, decltype(worse)> best(worse);
  for (size_t i = 0; i < train.size(); ++i) {
    std::vector<int64_t> m = index.within(train[i], options.threshold);
    if (m.empty()) continue;
    rep.drop.push_back(train_ids[i]);
    rep.pairs += static_cast<int64_t>(m.size());
    int nearest = 64;
    for (int64_t j : m) {
      other_hit[static_cast<size_t>(j)] = 1;
      DedupPair p{train_ids[i], other_ids[static_cast<size_t>(j)], hamming(train[i], other[static_cast<size_t>(j)])};
      nearest = std::min(nearest, p.distance);
      if (options.examples == 0) continue;
      if (static_cast<int>(best.size()) < options.examples) {
        best.push(p);
      } else if (worse(p, best.top())) {
        best.pop();
        best.push(p);
      }
    }
    rep.by_distance[static_cast<size_t>(nearest)] += 1;
  }
  std::sort(rep.drop.begin(), rep.drop.end());
  rep.drop.erase(std::unique(rep.drop.begin(), rep.drop.end()), rep.drop.end());
  rep.other_matched = std::count(other_hit.begin(), other_hit.end(), 1);
  while (!best.empty()) {
    rep.examples.push_back(best.top());
    best.pop();
  }
  std::reverse(rep.examples.begin(), rep.examples.end());
  return rep;
}

DedupReport dedup_against(const Dataset& train, const Dataset& other, const DedupOptions& options,
                          const std::vector<int64_t>& train_indices, const std::vector<int64_t>& other_indices) {
  auto ids = [](const Dataset& d, const std::vector<int64_t>& idx) {
    if (!idx.empty()) return idx;
    std::vector<int64_t> all(static_cast<size_t>(d.size()));
    for (int64_t i = 0; i < d.size(); ++i) all[static_cast<size_t>(i)] = i;
    return all;
  };
  validate(options);  // before the (slower) hashing
  std::vector<int64_t> tid = ids(train, train_indices), oid = ids(other, other_indices);
  return dedup_hashes(hash_dataset(train, tid, options.kind), tid, hash_dataset(other, oid, options.kind), oid, options);
}

std::vector<int64_t> remove_indices(const std::vector<int64_t>& indices, const std::vector<int64_t>& drop) {
  std::vector<int64_t> out;
  std::set_difference(indices.begin(), indices.end(), drop.begin(), drop.end(), std::back_inserter(out));
  return out;
}

nlohmann::json to_json(const DedupReport& r) {
  nlohmann::json ex = nlohmann::json::array();
  for (auto& p : r.examples) ex.push_back({{"train_index", p.train_index}, {"other_index", p.other_index}, {"distance", p.distance}});
  return {{"hash", hash_kind_name(r.kind)}, {"threshold", r.threshold}, {"train_size", r.train_size},
          {"other_size", r.other_size}, {"train_dropped", r.drop.size()}, {"other_matched", r.other_matched},
          {"pairs", r.pairs}, {"nearest_distance_histogram", r.by_distance}, {"examples", ex}};
}

}  // namespace nfscale::data
