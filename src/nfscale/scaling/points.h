// points.h - the run point shared by every scaling fit (one finished training run), and reading points from CSV.
//
// CSV format (header required, comma-separated, '#' lines and blank lines ignored, column order free):
//   model     optional  model name; when absent the name is derived from params ("N=1.23e+08")
//   params    N, parameter count                      (needed by compute-optimal and Chinchilla fits, planner)
//   examples  D, images processed in training          (needed by compute-optimal and Chinchilla fits)
//   flops     C, training compute in FLOPs            (needed by the frontier and compute-optimal fits)
//   loss      held-out loss                            (needed by every fit)
//   epochs    optional epoch budget                    (needed by the learning-rate fits)
//   lr        optional base learning rate              (needed by the learning-rate fits)
//   top1_err  optional top-1 error                     (reported only)
//   seed      optional integer seed                    (reported only; repeated seeds are averaged per LR)
// Empty cells mean "missing". Unknown columns are an error (catches typos such as "flop").
#pragma once
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace nfscale::scaling {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

struct RunPoint {
  std::string model;         // grouping key for per-model fits
  double params = kMissing;  // N
  double epochs = kMissing;
  double examples = kMissing;  // D (images processed)
  double flops = kMissing;     // C (training FLOPs)
  double lr = kMissing;
  double loss = kMissing;      // held-out loss
  double top1_err = kMissing;
  int seed = 0;
  std::string origin;  // where the point came from, for error messages ("runs.csv line 7", "trial 12")
};

nlohmann::json to_json(const RunPoint& p);

// Parses CSV text; `source` names the file in error messages. Throws UserError naming file, line and column.
std::vector<RunPoint> parse_points_csv(const std::string& text, const std::string& source);
// Reads and parses a CSV file.
std::vector<RunPoint> read_points_csv(const std::string& path);

// Which fields a fit needs; used to validate points before fitting.
enum class Field { Params, Epochs, Examples, Flops, Lr, Loss };
const char* field_name(Field f);

// Human-readable identification of a point for error messages: origin if set, else "point #i (model X)".
std::string describe_point(const RunPoint& p, std::size_t index);

// Throws UserError naming the fit, the point and the field unless every point has the listed fields finite
// and > 0.
void require_fields(const std::vector<RunPoint>& points, const std::vector<Field>& fields, const std::string& fit_name);

// Value of a field on a point.
double field_value(const RunPoint& p, Field f);

}  // namespace nfscale::scaling
