// dedup.h - near-duplicate removal between a training set and held-out/test sets: a 64-bit perceptual hash per
// image (DCT pHash, or the difference hash), a Hamming-threshold search between two hash lists by multi-index
// hashing (4 x 16-bit chunks, pigeonhole) for candidates, the pixel check of each candidate (pixel_match.h), and
// the report of which training indices to drop (docs/data.md).
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

// Near-duplicate search in two stages: the hash finds candidate pairs (Hamming distance <= threshold), then the
// pixel check (pixel_match.h) compares the candidates' thumbnails at every shift of at most max_shift pixels and,
// at the best-correlated shift, requires correlation >= min_correlation, mean |a - b| <= max_mean_abs_diff and
// |mean(a - b)| <= max_block_diff in every block x block window (a local difference such as another print or
// logo). Defaults calibrated on Fashion-MNIST (docs/data.md "Calibration"): they confirm copies that were shifted
// by 1-2 px, noised (sd 0.05) or rescaled, and reject the same-shape look-alikes that the hash matches by the
// thousand. validate_dedup_options() names the offending field.
struct DedupOptions {
  int threshold = 10;          // candidate: hash Hamming distance <= threshold bits (0..32). Loose on purpose:
                               // rescaling and noise move a pHash by several bits; the pixel check rejects
                               // the look-alikes this lets in
  bool centre = true;          // hash each image re-centred on its intensity centroid (candidate_hash), so that a
                               // shifted copy hashes like its original (a 1 px shift alone moves a pHash ~8 bits)
  bool confirm = true;         // the pixel check; false = the hash alone decides (look-alikes count as copies!)
  int thumb_size = 28;         // thumbnail side S in pixels (4..64), luma area-resampled from the whole image
                               // (28: Fashion-MNIST/MNIST at their own size, so pixel shifts stay whole pixels)
  int max_shift = 2;           // shifts tried, in thumbnail pixels (0 .. S/4)
  double min_correlation = 0.95;   // normalised cross-correlation at the best shift (in (0, 1])
  double max_mean_abs_diff = 10;   // mean |a - b| at that shift, grey levels of 255 (in (0, 255])
  int block = 4;                   // window side for the local difference (1..thumb_size)
  double max_block_diff = 24;      // largest |mean(a - b)| over block x block windows at that shift (in (0, 255])
  int examples = 10;           // example pairs kept (confirmed: most similar first) and as many near misses
  HashKind kind = HashKind::Dct;
};
// Throws UserError naming the field and its `nfscale dedup` flag, the value and the allowed range.
void validate_dedup_options(const DedupOptions& o);

struct DedupPair {
  int64_t train_index = 0;  // index in the training dataset
  int64_t other_index = 0;  // index in the other dataset
  int distance = 0;         // hash Hamming distance
  double correlation = 0;   // pixel check (0 when not run)
  double mean_abs_diff = 0;
  double max_block_diff = 0;
  int dx = 0, dy = 0;       // best shift (thumbnail pixels)
};

struct DedupReport {
  DedupOptions options;
  int64_t train_size = 0, other_size = 0;  // images compared
  // Stage 1, the hash: pairs within the threshold and the images that have one.
  int64_t candidate_pairs = 0, candidate_train = 0, candidate_other = 0;
  // Stage 2, confirmed by the pixel check (equal to stage 1 when options.confirm is false).
  std::vector<int64_t> drop;               // training indices with a confirmed near-duplicate in `other`, ascending
  int64_t other_matched = 0;               // images of `other` with at least one confirmed near-duplicate in train
  int64_t pairs = 0;                       // confirmed (train, other) pairs
  std::vector<int64_t> by_distance;        // by_distance[d]: dropped images whose nearest confirmed match is at d
  std::vector<int64_t> by_correlation;     // candidate pairs by correlation: [0] < 0.80, [k] in [0.79+k/100,
                                           // 0.80+k/100) for k = 1..20 ([20] includes 1.0); empty without confirm
  std::vector<DedupPair> examples;         // confirmed pairs, most similar first (without confirm: closest hash)
  std::vector<DedupPair> near_misses;      // rejected candidates with the highest correlation
};

// What the search needs of each image: its hash and, for the pixel check, its thumbnail.
struct Fingerprints {
  std::vector<int64_t> ids;      // dataset index of each entry
  std::vector<uint64_t> hashes;  // [n]
  int thumb_size = 0;            // S (0: no thumbnails)
  std::vector<uint8_t> thumbs;   // [n x S x S], luma 0..255 (thumbnail_u8)
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// The hash of the candidate search: perceptual_hash(image, options.kind), of the image translated by whole pixels
// (edges repeated) so that its luma centroid is at the centre when options.centre.
uint64_t candidate_hash(const Image& image, const DedupOptions& options);
// Hashes and (when options.confirm) thumbnails of the listed images (all when `indices` is empty), in one pass.
Fingerprints fingerprint_dataset(const Dataset& dataset, const std::vector<int64_t>& indices,
                                 const DedupOptions& options);
// The entries of `all` for the dataset indices `ids` (each must be in all.ids), in the order of `ids`.
Fingerprints select_fingerprints(const Fingerprints& all, const std::vector<int64_t>& ids);

// Near-duplicates of `other` (restricted to other_indices, all if empty) in `train` (restricted to train_indices,
// all if empty). Indices in the report are indices of the datasets (not positions in the lists). Throws UserError
// for options out of range (validate_dedup_options).
DedupReport dedup_against(const Dataset& train, const Dataset& other, const DedupOptions& options = {},
                          const std::vector<int64_t>& train_indices = {},
                          const std::vector<int64_t>& other_indices = {});
// The same on precomputed fingerprints (made with the same options' hash kind and thumbnail size).
DedupReport dedup_fingerprints(const Fingerprints& train, const Fingerprints& other, const DedupOptions& options);

// `indices` without the entries listed in `drop` (both ascending).
std::vector<int64_t> remove_indices(const std::vector<int64_t>& indices, const std::vector<int64_t>& drop);

nlohmann::json to_json(const DedupOptions& o);
nlohmann::json to_json(const DedupReport& r);

}  // namespace nfscale::data
