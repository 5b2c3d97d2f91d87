// dedup.cpp - perceptual hashes, multi-index Hamming search, the pixel-checked near-duplicate report (dedup.h).
#include "nfscale/data/dedup.h"

#include <algorithm>
#include <bitset>
#include <cmath>
#include <nlohmann/json.hpp>
#include <queue>
#include <tuple>

#include "nfscale/data/dataset.h"
#include "nfscale/data/pixel_match.h"
#include "nfscale/util/error.h"

namespace nfscale::data {
namespace {

constexpr int kChunks = 4;
constexpr int kChunkBits = 16;

uint64_t dct_hash(const Image& image) {
  constexpr int N = 32, K = 8;
  std::vector<double> px = luma_resampled(image, N, N);  // [32 x 32]
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
  std::vector<double> px = luma_resampled(image, 8, 9);  // [8 x 9]
  uint64_t h = 0;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x)
      if (px[y * 9 + x] > px[y * 9 + x + 1]) h |= uint64_t{1} << (y * 8 + x);
  return h;
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

void validate_dedup_options(const DedupOptions& o) {
  auto field = [&](const char* name, const std::string& value, const std::string& rule) {
    return std::string("dedup option ") + name + " = " + value + ": " + rule;
  };
  require(o.threshold >= 0 && o.threshold <= 32,
          field("threshold (--threshold)", std::to_string(o.threshold),
                "must be in 0..32 bits of the 64-bit hash (docs/data.md has the counts per threshold)"));
  require(o.examples >= 0, field("examples (--examples)", std::to_string(o.examples), "must be >= 0"));
  if (!o.confirm) return;
  require(o.thumb_size >= 4 && o.thumb_size <= 64,
          field("thumb_size (--thumb-size)", std::to_string(o.thumb_size), "must be in 4..64 pixels (default 28)"));
  require(o.max_shift >= 0 && o.max_shift <= o.thumb_size / 4,
          field("max_shift (--max-shift)", std::to_string(o.max_shift),
                "must be in 0.." + std::to_string(o.thumb_size / 4) + " (a quarter of thumb_size " +
                    std::to_string(o.thumb_size) + "; default 2)"));
  require(o.min_correlation > 0 && o.min_correlation <= 1,
          field("min_correlation (--min-correlation)", std::to_string(o.min_correlation), "must be in (0, 1] (default 0.95)"));
  require(o.block >= 1 && o.block <= o.thumb_size,
          field("block (--block)", std::to_string(o.block), "must be in 1..thumb_size (" + std::to_string(o.thumb_size) + ")"));
  require(o.max_block_diff > 0 && o.max_block_diff <= 255,
          field("max_block_diff (--max-block-diff)", std::to_string(o.max_block_diff), "must be in (0, 255] grey levels"));
  require(o.max_mean_abs_diff > 0 && o.max_mean_abs_diff <= 255,
          field("max_mean_abs_diff (--max-mad)", std::to_string(o.max_mean_abs_diff),
                "must be in (0, 255] grey levels (default 10)"));
}

namespace {

// `image` translated by whole pixels (edges repeated) so that the centroid of its luma is at the image centre.
Image centred_on_centroid(const Image& image) {
  const Image grey = image.channels == 1 ? image : convert_channels(image.channels == 4 ? convert_channels(image, 3) : image, 1);
  const int64_t H = image.height, W = image.width;
  double total = 0, sy = 0, sx = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const double v = grey.at(0, y, x);
      total += v;
      sy += v * (y + 0.5);
      sx += v * (x + 0.5);
    }
  if (total <= 0) return image;
  const int64_t dy = std::lround(H / 2.0 - sy / total), dx = std::lround(W / 2.0 - sx / total);
  if (dy == 0 && dx == 0) return image;
  Image out(image.channels, H, W);
  for (int64_t c = 0; c < image.channels; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        out.at(c, y, x) = image.at(c, std::clamp<int64_t>(y - dy, 0, H - 1), std::clamp<int64_t>(x - dx, 0, W - 1));
  return out;
}

}  // namespace

uint64_t candidate_hash(const Image& image, const DedupOptions& options) {
  require(!image.empty() && image.height > 0 && image.width > 0, "perceptual hash: the image is empty");
  require(image.channels >= 1 && image.channels <= 4,
          "perceptual hash: images with " + std::to_string(image.channels) + " channels are not supported (1-4)");
  return perceptual_hash(options.centre ? centred_on_centroid(image) : image, options.kind);
}

Fingerprints fingerprint_dataset(const Dataset& dataset, const std::vector<int64_t>& indices,
                                 const DedupOptions& options) {
  Fingerprints f;
  const int64_t n = indices.empty() ? dataset.size() : static_cast<int64_t>(indices.size());
  f.ids.resize(static_cast<size_t>(n));
  f.hashes.resize(static_cast<size_t>(n));
  const int S = options.confirm ? options.thumb_size : 0;
  f.thumb_size = S;
  f.thumbs.resize(static_cast<size_t>(n * S * S));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = indices.empty() ? i : indices[static_cast<size_t>(i)];
    const Image image = dataset.load(idx).image;
    f.ids[static_cast<size_t>(i)] = idx;
    f.hashes[static_cast<size_t>(i)] = candidate_hash(image, options);
    if (S > 0) {
      std::vector<uint8_t> t = thumbnail_u8(image, S);  // [S x S]
      std::copy(t.begin(), t.end(), f.thumbs.begin() + i * S * S);
    }
  }
  return f;
}

Fingerprints select_fingerprints(const Fingerprints& all, const std::vector<int64_t>& ids) {
  std::vector<std::pair<int64_t, int64_t>> pos;  // (dataset index, position in all), sorted
  pos.reserve(all.ids.size());
  for (size_t i = 0; i < all.ids.size(); ++i) pos.emplace_back(all.ids[i], static_cast<int64_t>(i));
  std::sort(pos.begin(), pos.end());
  Fingerprints f;
  const int64_t S = all.thumb_size;
  f.thumb_size = all.thumb_size;
  f.ids = ids;
  f.hashes.reserve(ids.size());
  f.thumbs.reserve(ids.size() * static_cast<size_t>(S * S));
  for (int64_t id : ids) {
    auto it = std::lower_bound(pos.begin(), pos.end(), std::pair<int64_t, int64_t>{id, INT64_MIN});
    require(it != pos.end() && it->first == id,
            "dedup: internal error, index " + std::to_string(id) + " has no fingerprint");
    f.hashes.push_back(all.hashes[static_cast<size_t>(it->second)]);
    f.thumbs.insert(f.thumbs.end(), all.thumbs.begin() + it->second * S * S,
                    all.thumbs.begin() + (it->second + 1) * S * S);
  }
  return f;
}

namespace {

// The `k` best pairs seen, by `better` (a strict order: better(a, b) = a ranks before b).
template <class Better>
class BestPairs {
 public:
  BestPairs(int k, Better better) : k_(k), better_(better), heap_(better) {}
  void offer(const DedupPair& p) {
    if (k_ == 0) return;
    if (static_cast<int>(heap_.size()) < k_) {
      heap_.push(p);
    } else if (better_(p, heap_.top())) {
      heap_.pop();
      heap_.push(p);
    }
  }
  std::vector<DedupPair> sorted() {  // best first
    std::vector<DedupPair> out;
    while (!heap_.empty()) {
      out.push_back(heap_.top());
      heap_.pop();
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

 private:
  int k_;
  Better better_;
  std::priority_queue<DedupPair, std::vector<DedupPair>, Better> heap_;  // top = the worst kept
};

bool closer_hash(const DedupPair& a, const DedupPair& b) {
  return std::tie(a.distance, a.train_index, a.other_index) < std::tie(b.distance, b.train_index, b.other_index);
}
bool more_similar(const DedupPair& a, const DedupPair& b) {
  return std::make_tuple(-a.correlation, a.mean_abs_diff, a.distance, a.train_index, a.other_index) <
         std::make_tuple(-b.correlation, b.mean_abs_diff, b.distance, b.train_index, b.other_index);
}

// Histogram bin of a candidate's correlation (DedupReport::by_correlation).
size_t correlation_bin(double r) {
  if (r < 0.80) return 0;
  return static_cast<size_t>(std::min(20.0, std::floor((r - 0.79) * 100 + 1e-9)));
}

}  // namespace

DedupReport dedup_fingerprints(const Fingerprints& train, const Fingerprints& other, const DedupOptions& options) {
  validate_dedup_options(options);
  require(train.hashes.size() == train.ids.size() && other.hashes.size() == other.ids.size(),
          "dedup: internal error, hashes and indices differ in length");
  const int S = options.thumb_size;
  if (options.confirm)
    require(train.thumb_size == S && other.thumb_size == S &&
                train.thumbs.size() == train.ids.size() * static_cast<size_t>(S * S) &&
                other.thumbs.size() == other.ids.size() * static_cast<size_t>(S * S),
            "dedup: internal error, fingerprints were made without " + std::to_string(S) + " px thumbnails");
  DedupReport rep;
  rep.options = options;
  rep.train_size = train.size();
  rep.other_size = other.size();
  rep.by_distance.assign(static_cast<size_t>(options.threshold + 1), 0);
  if (options.confirm) rep.by_correlation.assign(21, 0);
  const HashIndex index(other.hashes);
  std::vector<char> other_candidate(other.ids.size(), 0), other_hit(other.ids.size(), 0);
  BestPairs best(options.examples, options.confirm ? more_similar : closer_hash);
  BestPairs misses(options.confirm ? options.examples : 0, more_similar);
  std::vector<float> fa(static_cast<size_t>(S * S)), fb(static_cast<size_t>(S * S));  // the pair's thumbnails
  for (size_t i = 0; i < train.ids.size(); ++i) {
    const std::vector<int64_t> m = index.within(train.hashes[i], options.threshold);
    if (m.empty()) continue;
    rep.candidate_train += 1;
    rep.candidate_pairs += static_cast<int64_t>(m.size());
    int nearest = 64;
    for (int64_t j : m) {
      other_candidate[static_cast<size_t>(j)] = 1;
      DedupPair p{train.ids[i], other.ids[static_cast<size_t>(j)], hamming(train.hashes[i], other.hashes[static_cast<size_t>(j)])};
      bool confirmed = true;
      if (options.confirm) {
        const uint8_t* ta = train.thumbs.data() + i * S * S;  // [S x S]
        const uint8_t* tb = other.thumbs.data() + j * S * S;
        std::copy(ta, ta + S * S, fa.begin());
        std::copy(tb, tb + S * S, fb.begin());
        const PixelMatch pm = match_pixels(fa.data(), fb.data(), S, options.max_shift, options.max_mean_abs_diff,
                                           options.block);
        p.correlation = pm.correlation;
        p.mean_abs_diff = pm.mean_abs_diff;
        p.max_block_diff = pm.max_block_diff;
        p.dx = pm.dx;
        p.dy = pm.dy;
        rep.by_correlation[correlation_bin(pm.correlation)] += 1;
        confirmed = pm.correlation >= options.min_correlation && pm.mean_abs_diff <= options.max_mean_abs_diff &&
                    pm.max_block_diff <= options.max_block_diff;
      }
      if (!confirmed) {
        misses.offer(p);
        continue;
      }
      rep.pairs += 1;
      other_hit[static_cast<size_t>(j)] = 1;
      nearest = std::min(nearest, p.distance);
      best.offer(p);
    }
    if (nearest == 64) continue;  // no candidate confirmed
    rep.drop.push_back(train.ids[i]);
    rep.by_distance[static_cast<size_t>(nearest)] += 1;
  }
  std::sort(rep.drop.begin(), rep.drop.end());
  rep.drop.erase(std::unique(rep.drop.begin(), rep.drop.end()), rep.drop.end());
  rep.candidate_other = std::count(other_candidate.begin(), other_candidate.end(), 1);
  rep.other_matched = std::count(other_hit.begin(), other_hit.end(), 1);
  rep.examples = best.sorted();
  rep.near_misses = misses.sorted();
  return rep;
}

DedupReport dedup_against(const Dataset& train, const Dataset& other, const DedupOptions& options,
                          const std::vector<int64_t>& train_indices, const std::vector<int64_t>& other_indices) {
  validate_dedup_options(options);  // before the (slower) fingerprinting
  return dedup_fingerprints(fingerprint_dataset(train, train_indices, options),
                            fingerprint_dataset(other, other_indices, options), options);
}

std::vector<int64_t> remove_indices(const std::vector<int64_t>& indices, const std::vector<int64_t>& drop) {
  std::vector<int64_t> out;
  std::set_difference(indices.begin(), indices.end(), drop.begin(), drop.end(), std::back_inserter(out));
  return out;
}

nlohmann::json to_json(const DedupOptions& o) {
  nlohmann::json j = {{"hash", hash_kind_name(o.kind)}, {"centre", o.centre}, {"threshold", o.threshold},
                      {"confirm", o.confirm}};
  if (o.confirm) {
    j["thumb_size"] = o.thumb_size;
    j["max_shift"] = o.max_shift;
    j["min_correlation"] = o.min_correlation;
    j["max_mean_abs_diff"] = o.max_mean_abs_diff;
    j["block"] = o.block;
    j["max_block_diff"] = o.max_block_diff;
  }
  return j;
}

namespace {
nlohmann::json pairs_json(const std::vector<DedupPair>& pairs, bool confirm) {
  nlohmann::json out = nlohmann::json::array();
  for (auto& p : pairs) {
    nlohmann::json e = {{"train_index", p.train_index}, {"other_index", p.other_index}, {"distance", p.distance}};
    if (confirm) {
      e["correlation"] = p.correlation;
      e["mean_abs_diff"] = p.mean_abs_diff;
      e["max_block_diff"] = p.max_block_diff;
      e["shift"] = {p.dx, p.dy};
    }
    out.push_back(e);
  }
  return out;
}
}  // namespace

nlohmann::json to_json(const DedupReport& r) {
  nlohmann::json j = to_json(r.options);
  j.update({{"train_size", r.train_size}, {"other_size", r.other_size},
            {"candidates", {{"pairs", r.candidate_pairs}, {"train", r.candidate_train}, {"other", r.candidate_other}}},
            {"train_dropped", r.drop.size()}, {"other_matched", r.other_matched}, {"pairs", r.pairs},
            {"nearest_distance_histogram", r.by_distance}, {"examples", pairs_json(r.examples, r.options.confirm)}});
  if (r.options.confirm) {
    j["correlation_histogram"] = r.by_correlation;
    j["near_misses"] = pairs_json(r.near_misses, true);
  }
  return j;
}

}  // namespace nfscale::data
