// dedup_cache.h - a run's near-duplicate removal remembered on disk, so that the processes of a study (workers,
// plan check, fine-tuning) and later studies on the same data do not recompute it (~20 s of CPU on Fashion-MNIST).
// One JSON file per key in <cache dir>/dedup/, written atomically; the key hashes the pixels of both datasets, the
// training and held-out index lists, the options and the algorithm's version, so changed data misses the cache.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nfscale::data {
class Dataset;
struct DedupOptions;
}  // namespace nfscale::data

namespace nfscale::train {

// The cache directory: $NFSCALE_CACHE_DIR, else $XDG_CACHE_HOME/nfscale, else $HOME/.cache/nfscale; "" when
// NFSCALE_CACHE_DIR=off or no variable is set (no caching).
std::string cache_dir();

// Hex key of the removal's inputs. `test` may be null.
std::string dedup_cache_key(const data::Dataset& train, const std::vector<int64_t>& train_indices,
                            const std::vector<int64_t>& holdout_indices, const data::Dataset* test,
                            const data::DedupOptions& options);

// The cached record of `key`, if there is a readable one. Never throws.
std::optional<nlohmann::json> read_dedup_cache(const std::string& key);
// Stores `record` under `key`; a failure (read-only home, full disk) is a warning on stderr, never an error.
void write_dedup_cache(const std::string& key, const nlohmann::json& record);

}  // namespace nfscale::train
