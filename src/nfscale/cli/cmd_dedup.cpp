// cmd_dedup.cpp - `nfscale dedup`: near-duplicates (perceptual-hash candidates confirmed by a pixel check) between
// a training set and a held-out / test set: counts before and after the check, histograms and example pairs, as
// text, JSON or PNG sheets.
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
#include "nfscale/data/image_codec.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {
namespace {

struct DedupCliOptions {
  std::string data = "fashion-mnist";
  std::string against;
  int64_t holdout = 0;
  data::DedupOptions dedup;
  std::string hash = "dct";
  std::string pairs_png;
  bool json = false;
};

void print_pairs(const char* what, const std::vector<data::DedupPair>& pairs, bool confirm) {
  for (auto& p : pairs) {
    std::printf("  %s train #%lld ~ #%lld (hash distance %d", what, static_cast<long long>(p.train_index),
                static_cast<long long>(p.other_index), p.distance);
    if (confirm)
      std::printf(", correlation %.4f, mean |diff| %.1f, window |diff| %.1f, shift %+d,%+d", p.correlation,
                  p.mean_abs_diff, p.max_block_diff, p.dx, p.dy);
    std::printf(")\n");
  }
}

void print_report(const std::string& title, const data::DedupReport& r) {
  const bool confirm = r.options.confirm;
  auto pct = [&](size_t k) { return r.train_size ? 100.0 * static_cast<double>(k) / r.train_size : 0.0; };
  std::printf("%s\n", title.c_str());
  std::printf("  hash candidates: %lld of %lld training images (%.3f%%) within %d bits of %lld of %lld compared "
              "images; %lld pairs\n",
              static_cast<long long>(r.candidate_train), static_cast<long long>(r.train_size),
              pct(static_cast<size_t>(r.candidate_train)), r.options.threshold,
              static_cast<long long>(r.candidate_other), static_cast<long long>(r.other_size),
              static_cast<long long>(r.candidate_pairs));
  if (confirm)
    std::printf("  confirmed by the pixel check: %zu training images dropped (%.3f%%), %lld compared images "
                "matched; %lld pairs\n",
                r.drop.size(), pct(r.drop.size()), static_cast<long long>(r.other_matched),
                static_cast<long long>(r.pairs));
  else
    std::printf("  no pixel check (--no-confirm): the %zu candidates are dropped as they are\n", r.drop.size());
  std::printf("  dropped images by nearest hash distance:");
  for (size_t d = 0; d < r.by_distance.size(); ++d)
    if (r.by_distance[d] > 0) std::printf(" %zu:%lld", d, static_cast<long long>(r.by_distance[d]));
  std::printf("\n");
  if (confirm) {
    std::printf("  candidate pairs by correlation: <0.80:%lld", static_cast<long long>(r.by_correlation[0]));
    for (size_t k = 1; k < r.by_correlation.size(); ++k)
      if (r.by_correlation[k] > 0) std::printf(" %.2f:%lld", 0.79 + 0.01 * k, static_cast<long long>(r.by_correlation[k]));
    std::printf("\n");
  }
  print_pairs("copy", r.examples, confirm);
  print_pairs("near miss", r.near_misses, confirm);
}

// A PNG sheet of example pairs for looking at them: per pair the training image and the compared one side by
// side, grey, each scaled (nearest neighbour) to a 112 px cell; up to 10 pairs a column.
void write_pair_sheet(const std::string& path, const std::vector<data::DedupPair>& pairs, const data::Dataset& train,
                      const data::Dataset& other) {
  if (pairs.empty()) return;
  constexpr int64_t kCell = 112, kGap = 4, kRows = 10;
  const int64_t rows = std::min<int64_t>(kRows, static_cast<int64_t>(pairs.size()));
  const int64_t cols = (static_cast<int64_t>(pairs.size()) + kRows - 1) / kRows;
  const int64_t pair_w = 2 * kCell + kGap, W = cols * pair_w + (cols + 1) * 3 * kGap, H = rows * (kCell + kGap) + kGap;
  data::Image sheet(1, H, W, 255);
  auto blit = [&](const data::Image& src_any, int64_t oy, int64_t ox) {
    data::Image src = src_any.channels == 1 ? src_any : data::convert_channels(
                                                            src_any.channels == 4 ? data::convert_channels(src_any, 3) : src_any, 1);
    for (int64_t y = 0; y < kCell; ++y)
      for (int64_t x = 0; x < kCell; ++x)
        sheet.at(0, oy + y, ox + x) = src.at(0, y * src.height / kCell, x * src.width / kCell);
  };
  for (size_t i = 0; i < pairs.size(); ++i) {
    const int64_t col = static_cast<int64_t>(i) / kRows, row = static_cast<int64_t>(i) % kRows;
    const int64_t oy = kGap + row * (kCell + kGap), ox = 3 * kGap + col * (pair_w + 3 * kGap);
    blit(train.load(pairs[i].train_index).image, oy, ox);
    blit(other.load(pairs[i].other_index).image, oy, ox + kCell + kGap);
  }
  write_file_atomic(path, data::encode_png(sheet));
}

void run(const DedupCliOptions& o) {
  data::DataSpec train_spec = data::parse_data_spec(o.data, "--data");
  auto train = data::open_dataset(train_spec);
  data::DedupOptions opts = o.dedup;
  opts.kind = data::parse_hash_kind(o.hash, "--hash");
  data::validate_dedup_options(opts);
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
  const data::Fingerprints all_train = data::fingerprint_dataset(*train, {}, opts);
  struct Named {
    std::string name, tag;
    data::DedupReport report;
    std::shared_ptr<data::Dataset> other;
  };
  std::vector<Named> reports;
  const data::Fingerprints train_fp = data::select_fingerprints(all_train, train_idx);
  if (o.holdout > 0)
    reports.push_back({"held-out (" + std::to_string(o.holdout) + " images of the training split)", "holdout",
                       data::dedup_fingerprints(train_fp, data::select_fingerprints(all_train, split.holdout), opts),
                       train});
  if (!o.against.empty()) {
    data::DataSpec other_spec = data::parse_data_spec(o.against, "--against");
    if (!data::has_split_suffix(o.against)) other_spec.split = "test";  // as `train --test-data`
    auto other = data::open_dataset(other_spec);
    reports.push_back({o.against + " (" + other_spec.split + " split)", "against",
                       data::dedup_fingerprints(train_fp, data::fingerprint_dataset(*other, {}, opts), opts), other});
  }
  require(!reports.empty(), "dedup: nothing to compare; give --against SPEC (e.g. fashion-mnist for its test split) "
                            "and/or --holdout N");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!o.pairs_png.empty())
    for (auto& r : reports) {
      write_pair_sheet(o.pairs_png + "-" + r.tag + "-copies.png", r.report.examples, *train, *r.other);
      write_pair_sheet(o.pairs_png + "-" + r.tag + "-near-misses.png", r.report.near_misses, *train, *r.other);
    }
  if (o.json) {
    nlohmann::json j = {{"data", o.data}, {"options", data::to_json(opts)}, {"seconds", secs}};
    nlohmann::json arr = nlohmann::json::array();
    for (auto& r : reports) {
      nlohmann::json rj = data::to_json(r.report);
      rj["against"] = r.name;
      arr.push_back(rj);
    }
    j["reports"] = arr;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("Near-duplicates of %s (%lld training images compared): %s hash within %d bits", o.data.c_str(),
              static_cast<long long>(train_idx.size()), data::hash_kind_name(opts.kind), opts.threshold);
  if (opts.confirm)
    std::printf(", then %d px thumbnails correlating >= %.3f at a shift of <= %d px with mean |diff| <= %.1f and "
                "%dx%d-window |diff| <= %.1f",
                opts.thumb_size, opts.min_correlation, opts.max_shift, opts.max_mean_abs_diff, opts.block, opts.block,
                opts.max_block_diff);
  std::printf("  (%.2f s)\n", secs);
  for (auto& r : reports) print_report("against " + r.name, r.report);
}

const RegisterCommand kRegister_cmd_dedup(75, [](CLI::App& root) {
  auto opts = std::make_shared<DedupCliOptions>();
  auto* cmd = root.add_subcommand(
      "dedup",
      "Find near-duplicates between a training set and a test / held-out set: a 64-bit perceptual hash (pHash:\n"
      "32x32 grey DCT, or dHash) within a Hamming threshold gives candidates, and a pixel check confirms them\n"
      "(28x28 grey thumbnails at the best of small shifts: correlation, mean |diff|, largest 4x4-window\n"
      "difference). Prints both counts, histograms and example pairs (docs/data.md).");
  data::DedupOptions& d = opts->dedup;
  cmd->add_option("--data", opts->data, "Training data spec as for `train --data` (kind[:path[:split]])")
      ->capture_default_str();
  cmd->add_option("--against", opts->against,
                  "Data to compare with; its test split unless the spec ends in :train or :test (fashion-mnist = its test split)");
  cmd->add_option("--holdout", opts->holdout,
                  "Also compare with the held-out images carved from --data as `train --holdout N` does");
  cmd->add_option("--threshold", d.threshold,
                  "Candidates: hash Hamming distance <= this many bits of 64 (0..32)")->capture_default_str();
  cmd->add_flag("--centre,!--no-centre", d.centre,
                "Hash each image re-centred on its brightness centroid (default; shifted copies hash alike)");
  cmd->add_flag("--confirm,!--no-confirm", d.confirm,
                "Confirm candidates by the pixel check (default); --no-confirm drops every hash candidate");
  cmd->add_option("--min-correlation", d.min_correlation,
                  "Pixel check: normalised cross-correlation of the thumbnails at the best shift, in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--max-mad", d.max_mean_abs_diff,
                  "Pixel check: mean |difference| of the thumbnails at that shift, grey levels (0, 255]")
      ->capture_default_str();
  cmd->add_option("--block", d.block, "Pixel check: window side for the local difference (1..thumb-size)")
      ->capture_default_str();
  cmd->add_option("--max-block-diff", d.max_block_diff,
                  "Pixel check: largest |mean difference| over block x block windows at that shift, grey levels")
      ->capture_default_str();
  cmd->add_option("--max-shift", d.max_shift, "Pixel check: shifts tried, thumbnail pixels (0..thumb-size/4)")
      ->capture_default_str();
  cmd->add_option("--thumb-size", d.thumb_size, "Pixel check: thumbnail side in pixels (4..64)")
      ->capture_default_str();
  cmd->add_option("--examples", d.examples, "Example pairs to print: copies (most similar first) and near misses")
      ->capture_default_str();
  cmd->add_option("--hash", opts->hash, "dct (pHash) or difference (dHash)")->capture_default_str();
  cmd->add_option("--pairs-png", opts->pairs_png,
                  "Write the example pairs as PNG sheets PREFIX-{holdout,against}-{copies,near-misses}.png");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace nfscale::cli
