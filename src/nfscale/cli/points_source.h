// points_source.h - where `nfscale fit` and `nfscale plan` read run points from: a CSV (--points) or a study's
// results database (--db, --study).
#pragma once
#include <string>
#include <vector>

#include "nfscale/scaling/points.h"

namespace CLI {
class App;
}

namespace nfscale::cli {

struct PointsSource {
  std::string points_csv;
  std::string db;
  std::string study = "default";
};

void add_points_source_flags(CLI::App& app, PointsSource& source);

// Throws UserError unless exactly one of --points / --db is given.
std::vector<scaling::RunPoint> load_points(const PointsSource& source);

// Human-readable name of the source for output.
std::string describe(const PointsSource& source);

}  // namespace nfscale::cli
