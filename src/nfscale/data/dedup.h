// dedup.h - near-duplicate removal between a training set and held-out/test sets: a 64-bit perceptual hash per
// image (DCT pHash, or the difference hash), a Hamming-threshold search between two hash lists by multi-index
// hashing (4 x 16-bit chunks, pigeonhole), and the report of which training indices to drop (docs/data.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/data/image.h"

namespace nfscale::data {

class Dataset;

// Which perceptual hash. Both map an image (any size, 1-4 channels) to 64 bits; Hamming distance compares them.
enum class HashKind {
  Dct,         // pHash: luma, area-resample to 32x32, 2-D DCT-II, the 8x8 lowest frequencies without the DC term
               // (63 coefficients) compared with their median: bit k = coefficient k > median (bit 63 is 0)
  Difference,  // dHash: luma, area-resample to 9x8, bit = pixel brighter than its right neighbour
};
const char* hash_kind_name(HashKind k);
HashKind parse_hash_kind(const std::string& text, const std::string& field);  // "dct" | "difference"

// Hash of one image. Throws UserError for an empty image or more than 4 channels.
uint64_t perceptual_hash(const Image& image, HashKind kind = HashKind::Dct);
int hamming(uint64_t a, uint64_t b);

// Index of 64-bit hashes for radius queries: multi-index hashing with 4 tables keyed by one 16-bit chunk each.
// Two hashes within distance t agree within floor(t / 4) bits on at least one chunk (pigeonhole), so a query
// probes, per chunk, every key within that radius and verifies the candidates' full distance.
class HashIndex {
 public:
  explicit HashIndex(std::vector<uint64_t> hashes);
  // Indices i with hamming(hashes[i], query) <= threshold, ascending.
  std::vector<int64_t> within(uint64_t query, int threshold) const;
  int64_t size() const { return static_cast<int64_t>(hashes_.size()); }

 private:
  std::vector<uint64_t> hashes_;
  // tables_[c]: sorted (chunk value, index) pairs of chunk c.
  std::vector<std::vector<std::pair<uint16_t, int32_t>>> tables_;
};

struct DedupOptions {
  int threshold = 0;  // Hamming distance <= threshold counts as a near-duplicate (0..32; see docs/data.md:
                      // on Fashion-MNIST even 0 matches same-shape images, not only copies)
  int examples = 10;  // example pairs kept (closest first)
  HashKind kind = HashKind::Dct;
};

struct DedupPair {
  int64_t train_index = 0;  // index in the training dataset
  int64_t other_index = 0;  // index in the other dataset
  int distance = 0;
};

struct DedupReport {
  int threshold = 0;
  HashKind kind = HashKind::Dct;
  int64_t train_size = 0, other_size = 0;  // images compared
  std::vector<int64_t> drop;               // training indices with a near-duplicate in `other`, ascending
  int64_t other_matched = 0;               // images of `other` with at least one near-duplicate in train
  int64_t pairs = 0;                       // (train, other) pairs within the threshold
  std::vector<int64_t> by_distance;        // by_distance[d]: train images whose nearest match is at distance d
  std::vector<DedupPair> examples;         // closest first
};

// Hashes of the listed images (all when `indices` is empty).
std::vector<uint64_t> hash_dataset(const Dataset& dataset, const std::vector<int64_t>& indices, HashKind kind);

// Near-duplicates of `other` (restricted to other_indices, all if empty) in `train` (restricted to train_indices,
// all if empty). Indices in the report are indices of the datasets (not positions in the lists). Throws UserError
// for a threshold outside 0..32 or a negative example count.
DedupReport dedup_against(const Dataset& train, const Dataset& other, const DedupOptions& options = {},
                          const std::vector<int64_t>& train_indices = {},
                          const std::vector<int64_t>& other_indices = {});
// The same on precomputed hashes (train_ids / other_ids name each hash's dataset index).
DedupReport dedup_hashes(const std::vector<uint64_t>& train, const std::vector<int64_t>& train_ids,
                         const std::vector<uint64_t>& other, const std::vector<int64_t>& other_ids,
                         const DedupOptions& options);

// `indices` without the entries listed in `drop` (both ascending).
std::vector<int64_t> remove_indices(const std::vector<int64_t>& indices, const std::vector<int64_t>& drop);

nlohmann::json to_json(const DedupReport& r);

}  // namespace nfscale::data
