// run_dir.cpp - run-directory handling of a training run (see run_dir.h).
#include "nfscale/train/run_dir.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "nfscale/train/recipe.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::train {
namespace fs = std::filesystem;

namespace {

// The config.json at `path`, with the logistics that do not change the result (quiet, checkpoint interval, loader
// threads, device) taken from `current`.
TrainConfig stored_config(const std::string& path, const TrainConfig& current) {
  TrainConfig stored = config_from_json(nlohmann::json::parse(read_file(path)), path);
  stored.quiet = current.quiet;
  stored.checkpoint_seconds = current.checkpoint_seconds;
  stored.checkpoint_steps = current.checkpoint_steps;
  stored.loader_threads = current.loader_threads;
  stored.device = current.device;
  return stored;
}

}  // namespace

RunDir open_run_dir(TrainConfig& cfg, bool resume, bool primary) {
  if (primary) make_dirs(cfg.run_dir);
  RunDir r;
  const fs::path d(cfg.run_dir);
  r.dir = cfg.run_dir;
  r.config = (d / "config.json").string();
  r.checkpoint = (d / "checkpoint.pt").string();
  r.metrics = (d / "metrics.jsonl").string();
  r.weights = (d / "weights.pt").string();
  r.weights_ema = (d / "weights_ema.pt").string();
  r.result = (d / "result.json").string();
  r.dedup = (d / "dedup.json").string();
  r.resuming = resume && fs::exists(r.checkpoint);
  if (!primary) {
    require(fs::exists(r.config), r.config + ": missing on a data-parallel rank > 0 (rank 0 writes it first); the "
                                             "--run-dir must be on a file system every rank shares");
    cfg = stored_config(r.config, cfg);
    return r;
  }
  if (r.resuming && fs::exists(r.config)) {
    // The stored configuration is authoritative on resume, except for logistics that do not change the result.
    cfg = stored_config(r.config, cfg);
    // Run dirs written before "auto" was resolved at the start always ran fp32 (auto's meaning until session 3):
    // keep that, whatever this host's CPU would choose now.
    if (cfg.precision == "auto") cfg.precision = "fp32";
  }
  // "auto" settings are resolved once, when the run starts, and the stored config records the choice: a resumed run
  // keeps its precision and recipe even on a host (or a version) whose defaults would differ.
  resolve_recipe(cfg);
  write_file_atomic(r.config, to_json(cfg).dump(2) + "\n");
  for (const auto& entry : fs::directory_iterator(cfg.run_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".checkpoint.pt.tmp.", 0) == 0 || name.rfind(".weights", 0) == 0) {
      std::error_code ec;
      fs::remove(entry.path(), ec);
    }
  }
  return r;
}

}  // namespace nfscale::train
