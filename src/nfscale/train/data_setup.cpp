// data_setup.cpp - datasets, splits (hold-out, near-duplicate removal, subset) and loader options of a run.
#include "nfscale/train/data_setup.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>

#include "nfscale/data/dataset.h"
#include "nfscale/data/dedup.h"
#include "nfscale/train/config.h"
#include "nfscale/train/dedup_cache.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace nfscale::train {

namespace {

nlohmann::json set_summary(const std::string& name, const data::DedupReport& r) {
  nlohmann::json j = data::to_json(r);
  const nlohmann::json options = data::to_json(r.options);
  for (auto it = options.begin(); it != options.end(); ++it) j.erase(it.key());  // recorded once, beside the sets
  j["set"] = name;
  return j;
}

// The training indices that are confirmed near-duplicates of a held-out or test image (default DedupOptions).
RunDedup compute_dedup(const RunData& d) {
  const auto t0 = std::chrono::steady_clock::now();
  RunDedup r;
  r.applied = true;
  r.train_before = static_cast<int64_t>(d.train_indices.size());
  const data::DedupOptions opts;  // calibrated defaults (docs/data.md "Calibration")
  // One pass over the training split: the training part and the hold-out are both drawn from it.
  const data::Fingerprints split = data::fingerprint_dataset(*d.train_set, {}, opts);
  const data::Fingerprints train = data::select_fingerprints(split, d.train_indices);
  nlohmann::json sets = nlohmann::json::array();
  auto add = [&](const std::string& name, const data::DedupReport& rep) {
    std::vector<int64_t> merged;
    std::set_union(r.removed.begin(), r.removed.end(), rep.drop.begin(), rep.drop.end(), std::back_inserter(merged));
    r.removed = std::move(merged);
    sets.push_back(set_summary(name, rep));
  };
  if (!d.holdout_indices.empty())
    add("holdout", data::dedup_fingerprints(train, data::select_fingerprints(split, d.holdout_indices), opts));
  if (d.test_set)
    add("test", data::dedup_fingerprints(train, data::fingerprint_dataset(*d.test_set, d.test_indices, opts), opts));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.record = {{"version", 1},
              {"options", data::to_json(opts)},
              {"train_before", r.train_before},
              {"train_after", r.train_before - static_cast<int64_t>(r.removed.size())},
              {"removed_count", r.removed.size()},
              {"seconds", r.seconds},
              {"sets", sets},
              {"removed", r.removed}};
  return r;
}

// The removal of a record (dedup.json, or a cache entry), checked against the current training indices. `origin`
// names the record in errors.
RunDedup from_record(const nlohmann::json& record, const RunData& d, const std::string& origin) {
  RunDedup r;
  r.applied = true;
  r.from_record = true;
  r.train_before = static_cast<int64_t>(d.train_indices.size());
  r.record = record;
  try {
    const int64_t before = r.record.at("train_before").get<int64_t>();
    r.removed = r.record.at("removed").get<std::vector<int64_t>>();
    require(before == r.train_before,
            origin + ": recorded for " + std::to_string(before) + " training images but the data now gives " +
                std::to_string(r.train_before) + "; the data changed since the run started: use a new --run-dir");
  } catch (const nlohmann::json::exception& e) {
    throw UserError(origin + ": not a dedup record (" + e.what() + "); delete it to recompute the removal");
  }
  require(std::is_sorted(r.removed.begin(), r.removed.end()), origin + ": 'removed' must be ascending");
  for (int64_t i : r.removed)
    require(std::binary_search(d.train_indices.begin(), d.train_indices.end(), i),
            origin + ": removed index " + std::to_string(i) + " is not a training index of '" + d.train_set->describe() +
                "'; the data changed since the run started: use a new --run-dir");
  return r;
}

// The removal recorded in the run directory's dedup.json (a resumed run).
RunDedup recorded_dedup(const std::string& path, const RunData& d) {
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + ": not a dedup record (" + e.what() + "); delete it to recompute the removal");
  }
  return from_record(record, d, path);
}

// compute_dedup, remembered per process (a study's worker runs many trials on the same data) and on disk
// (dedup_cache.h: the other processes of a study, later studies): the removal is a function of the data, the
// hold-out and the options only, and costs ~20 s of CPU on Fashion-MNIST.
RunDedup memo_dedup(const TrainConfig& c, const RunData& d) {
  static std::mutex mu;
  static std::map<std::string, RunDedup> memo;
  const std::string key = c.data + "\n" + c.test_data + "\n" + std::to_string(c.holdout) + "\n" +
                          std::to_string(d.train_set->size()) + "\n" +
                          std::to_string(d.test_set ? d.test_set->size() : -1) + "\n" +
                          data::to_json(data::DedupOptions{}).dump();
  std::lock_guard<std::mutex> lock(mu);
  auto it = memo.find(key);
  if (it != memo.end()) {
    RunDedup r = it->second;
    r.cached = true;
    return r;
  }
  // Then the on-disk cache (dedup_cache.h), keyed by the pixels, the index lists and the options.
  const auto t0 = std::chrono::steady_clock::now();
  const std::string disk_key = dedup_cache_key(*d.train_set, d.train_indices, d.holdout_indices, d.test_set.get(),
                                               data::DedupOptions{});
  if (std::optional<nlohmann::json> cached = read_dedup_cache(disk_key)) {
    cached->erase("cache_key");
    try {
      RunDedup r = from_record(*cached, d, "dedup cache entry " + disk_key);
      r.from_record = false;
      r.cached = true;
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return memo.emplace(key, r).first->second;
    } catch (const UserError&) {
      // An entry that does not fit (cannot happen short of a key collision or a hand edit): recompute it.
    }
  }
  RunDedup r = compute_dedup(d);
  write_dedup_cache(disk_key, r.record);
  return memo.emplace(key, r).first->second;
}

}  // namespace

RunData setup_data(const TrainConfig& c, const std::string& dedup_record) {
  RunData d;
  data::DataSpec train_spec = data::parse_data_spec(c.data, "--data");
  train_spec.split = "train";
  d.kind = train_spec.kind;
  d.train_set = data::open_dataset(train_spec);
  d.num_classes = d.train_set->num_classes();
  d.channels = c.channels > 0 ? c.channels : d.train_set->channels();
  const int64_t n = d.train_set->size();
  require(c.holdout < n, "--holdout " + std::to_string(c.holdout) + " leaves no training examples: '" + c.data +
                             "' has " + std::to_string(n) + "; choose a smaller hold-out");
  // The hold-out depends only on the data (seed 0), so all trials and seeds of a study share it.
  data::Split split = c.holdout > 0 ? data::stratified_holdout_split(data::all_labels(*d.train_set), d.num_classes,
                                                                     c.holdout, /*seed=*/0)
                                    : data::Split{};
  if (c.holdout == 0) {
    d.train_indices.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) d.train_indices[static_cast<size_t>(i)] = i;
  } else {
    d.train_indices = std::move(split.train);
    d.holdout_indices = std::move(split.holdout);
  }
  std::string test_text = c.test_data;
  if (test_text.empty() && train_spec.kind != "imagefolder" && train_spec.kind != "idx") {
    data::DataSpec ts = train_spec;
    ts.split = "test";
    d.test_set = data::open_dataset(ts);
  } else if (!test_text.empty() && test_text != "none") {
    data::DataSpec ts = data::parse_data_spec(test_text, "--test-data");
    if (!data::has_split_suffix(test_text)) ts.split = "test";  // "mnist:DIR" means its test split too
    d.test_set = data::open_dataset(ts);
    require(d.test_set->num_classes() <= d.num_classes,
            "--test-data '" + test_text + "' has more classes than the training data '" + c.data + "'");
  }
  if (d.test_set) {
    d.test_indices.resize(static_cast<size_t>(d.test_set->size()));
    for (int64_t i = 0; i < d.test_set->size(); ++i) d.test_indices[static_cast<size_t>(i)] = i;
  }
  if (c.dedup == "on") {
    d.dedup = !dedup_record.empty() && std::filesystem::exists(dedup_record) ? recorded_dedup(dedup_record, d)
                                                                             : memo_dedup(c, d);
    d.train_indices = data::remove_indices(d.train_indices, d.dedup.removed);
  }
  if (c.train_examples > 0 && c.train_examples < static_cast<int64_t>(d.train_indices.size())) {
    // A fixed subset (independent of the run seed): the first train_examples of a seeded permutation, kept sorted.
    std::vector<int64_t> idx = d.train_indices;
    SplitMix rng(derive_seed(0, {0x5355ull}));
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
    idx.resize(static_cast<size_t>(c.train_examples));
    std::sort(idx.begin(), idx.end());
    d.train_indices = std::move(idx);
  }
  return d;
}

std::string describe_dedup(const RunDedup& r) {
  if (!r.applied) return "[dedup] off";
  char buf[512];
  if (r.from_record) {
    std::snprintf(buf, sizeof buf, "[dedup] %zu of %lld training images removed, as recorded when the run started",
                  r.removed.size(), static_cast<long long>(r.train_before));
    return buf;
  }
  std::string matched;
  for (const auto& s : r.record.at("sets")) {
    matched += matched.empty() ? "" : " and ";
    matched += std::to_string(s.at("other_matched").get<int64_t>()) + " " + (s.at("set") == "holdout" ? "held-out" : "test");
  }
  if (!matched.empty()) matched += " images";
  const auto& o = r.record.at("options");
  std::snprintf(buf, sizeof buf,
                "[dedup] removed %zu of %lld training images: confirmed near-duplicates of %s (pHash <= %d bits, "
                "then correlation >= %.2f at shifts <= %d px, mean |diff| <= %.0f, %dx%d windows <= %.0f; %.1f s%s)",
                r.removed.size(), static_cast<long long>(r.train_before), matched.empty() ? "nothing" : matched.c_str(),
                o.at("threshold").get<int>(), o.at("min_correlation").get<double>(), o.at("max_shift").get<int>(),
                o.at("max_mean_abs_diff").get<double>(), o.at("block").get<int>(), o.at("block").get<int>(),
                o.at("max_block_diff").get<double>(), r.seconds, r.cached ? ", cached" : "");
  return buf;
}

data::AugmentConfig make_augment(const TrainConfig& c, const RunData& d) {
  data::AugmentConfig a;
  a.random_resized_crop = c.augment;
  a.area_min = c.crop_min_area;
  a.flip = c.augment && c.flip;
  a.randaug_layers = c.randaugment_layers;
  a.randaug_magnitude = c.randaugment_magnitude;
  a.mixup_alpha = c.mixup;
  a.cutmix_alpha = c.cutmix;
  a.label_smoothing = c.label_smoothing;
  data::default_normalisation(d.kind, d.channels, a.mean, a.std);
  return a;
}

data::LoaderOptions make_train_loader_options(const TrainConfig& c, const RunData& d) {
  data::LoaderOptions o;
  o.batch_size = c.micro();
  o.seed = c.seed;
  o.threads = c.loader_threads;
  o.train = true;
  o.resolution = c.resolution;
  o.augment = make_augment(c, d);
  o.multiplicity = c.multiplicity;
  o.channels = d.channels;
  return o;
}

EvalOptions make_eval_options(const TrainConfig& c, const RunData& d, bool bf16) {
  EvalOptions eo;
  eo.resolution = c.eval_res();
  eo.threads = c.loader_threads;
  eo.channels = d.channels;
  eo.bf16 = bf16;
  eo.channels_last = c.channels_last;
  eo.augment = make_augment(c, d);
  return eo;
}

}  // namespace nfscale::train
