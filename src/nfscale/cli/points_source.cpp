// points_source.cpp - loading run points from a CSV file or a results database.
#include "nfscale/cli/points_source.h"

#include <CLI/CLI.hpp>

#include "nfscale/store/store_location.h"
#include "nfscale/study/pipeline.h"
#include "nfscale/util/error.h"

namespace nfscale::cli {

void add_points_source_flags(CLI::App& app, PointsSource& s) {
  app.add_option("--points", s.points_csv,
                 "CSV of run points (header: model, params, examples, flops, loss, epochs, lr, top1_err, seed; "
                 "docs/scaling.md)");
  app.add_option("--db", s.db,
                 "Results store of a study: an SQLite file (e.g. studies/default/results.sqlite) or a postgresql:// "
                 "URI");
  app.add_option("--study", s.study, "Study name inside --db")->capture_default_str();
}

std::vector<scaling::RunPoint> load_points(const PointsSource& s) {
  require(s.points_csv.empty() != s.db.empty(),
          "give exactly one source of run points: --points FILE.csv or --db RESULTS.sqlite|postgresql://... "
          "[--study NAME]");
  if (!s.points_csv.empty()) return scaling::read_points_csv(s.points_csv);
  return study::study_points(s.db, s.study);
}

std::string describe(const PointsSource& s) {
  return s.points_csv.empty() ? store::redact_location(s.db) + " (study '" + s.study + "')" : s.points_csv;
}

}  // namespace nfscale::cli
