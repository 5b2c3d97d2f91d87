// cmd_dedup.cpp - `nfscale dedup`: near-duplicates (perceptual hash within a Hamming threshold) between a training
// set and a held-out / test set: counts, the distance histogram and example pairs, as text or JSON.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "nfscale/cli/command_registry.h"
#include "nfscale/data/dataset.h"
#include "nfscale/data/dedup.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {
namespace {

struct DedupCliOptions {
  std::string data = "fashion-mnist";
  std::string against;
  int64_t holdout = 0;
  int threshold = data::DedupOptions{}.threshold;
  int examples = 10;
  std::string hash = "dct";
  bool json = false;
};

void print_report(const std::string& title, const data::DedupReport& r) {
  std::printf("%s\n", title.c_str());
  std::printf("  %lld of %lld training images have a near-duplicate (%.3f%%) among %lld of %lld compared images; "
              "%lld pairs\n",
              static_cast<long long>(r.drop.size()), static_cast<long long>(r.train_size),
              r.train_size ? 100.0 * r.drop.size() / r.train_size : 0.0, static_cast<long long>(r.other_matched),
              static_cast<long long>(r.other_size), static_cast<long long>(r.pairs));
  std::printf("  nearest distance:");
  for (size_t d = 0; d < r.by_distance.size(); ++d) std::printf(" %zu:%lld", d, static_cast<long long>(r.by_distance[d]));
  std::printf("\n");
  for (auto& p : r.examples)
    std::printf("  train #%lld ~ #%lld (distance %d)\n", static_cast<long long>(p.train_index),
                static_cast<long long>(p.other_index), p.distance);
}

void run(const DedupCliOptions& o) {
  data::DataSpec train_spec = data::parse_data_spec(o.data, "--data");
  auto train = data::open_dataset(train_spec);
  data::DedupOptions opts;
  opts.threshold = o.threshold;
  opts.examples = o.examples;
  opts.kind = data::parse_hash_kind(o.hash, "--hash");
  require(o.holdout >= 0 && o.holdout < train->size(),
          "--holdout " + std::to_string(o.holdout) + ": must be in [0, " + std::to_string(train->size()) +
              ") for '" + o.data + "'");
  const auto t0 = std::chrono::steady_clock::now();
  // Training indices: the whole split, or what remains after the study's stratified hold-out (seed 0, as
  // `nfscale train --holdout` carves it).
  std::vector<int64_t> train_idx;
  data::Split split;
  if (o.holdout > 0) {
    split = data::stratified_holdout_split(data::all_labels(*train), train->num_classes(), o.holdout, 0);
    train_idx = split.train;
  } else {
    for (int64_t i = 0; i < train->size(); ++i) train_idx.push_back(i);
  }
  std::vector<uint64_t> train_hashes = data::hash_dataset(*train, train_idx, opts.kind);
  nlohmann::json j = {{"data", o.data}, {"hash", data::hash_kind_name(opts.kind)}, {"threshold", o.threshold}};
  std::vector<std::pair<std::string, data::DedupReport>> reports;
  if (o.holdout > 0)
    reports.emplace_back("held-out (" + std::to_string(o.holdout) + " images of the training split)",
                         data::dedup_hashes(train_hashes, train_idx, data::hash_dataset(*train, split.holdout, opts.kind),
                                            split.holdout, opts));
  if (!o.against.empty()) {
    data::DataSpec other_spec = data::parse_data_spec(o.against, "--against");
    if (o.against.find(':') == std::string::npos) other_spec.split = "test";  // as `train --test-data`
    auto other = data::open_dataset(other_spec);
    std::vector<int64_t> other_idx;
    for (int64_t i = 0; i < other->size(); ++i) other_idx.push_back(i);
    reports.emplace_back(o.against + " (" + other_spec.split + " split)",
                         data::dedup_hashes(train_hashes, train_idx, data::hash_dataset(*other, other_idx, opts.kind),
                                            other_idx, opts));
  }
  require(!reports.empty(), "dedup: nothing to compare; give --against SPEC (e.g. fashion-mnist for its test split) "
                            "and/or --holdout N");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (auto& [name, r] : reports) {
      nlohmann::json rj = data::to_json(r);
      rj["against"] = name;
      arr.push_back(rj);
    }
    j["reports"] = arr;
    j["seconds"] = secs;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("Near-duplicates of %s (%lld training images compared), %s hash, Hamming distance <= %d  (%.2f s)\n",
              o.data.c_str(), static_cast<long long>(train_idx.size()), data::hash_kind_name(opts.kind), o.threshold,
              secs);
  for (auto& [name, r] : reports) print_report("against " + name, r);
}

const RegisterCommand kRegister(75, [](CLI::App& root) {
  auto opts = std::make_shared<DedupCliOptions>();
  auto* cmd = root.add_subcommand(
      "dedup",
      "Find near-duplicates between a training set and a test / held-out set with a 64-bit perceptual hash\n"
      "(pHash: 32x32 grey DCT, or dHash) within a Hamming threshold; prints counts, the distance histogram and\n"
      "example pairs (docs/data.md).");
  cmd->add_option("--data", opts->data, "Training data spec as for `train --data` (kind[:path[:split]])");
  cmd->add_option("--against", opts->against,
                  "Data to compare with; without ':' its test split (e.g. fashion-mnist = Fashion-MNIST test)");
  cmd->add_option("--holdout", opts->holdout,
                  "Also compare with the held-out images carved from --data as `train --holdout N` does");
  cmd->add_option("--threshold", opts->threshold, "Hamming distance (bits of 64) counted as a near-duplicate")
      ->check(CLI::Range(0, 32));
  cmd->add_option("--examples", opts->examples, "Example pairs to print (closest first)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--hash", opts->hash, "dct (pHash) or difference (dHash)");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace nfscale::cli
