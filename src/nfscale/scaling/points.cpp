// points.cpp - RunPoint JSON, CSV parsing with file/line/column errors, and per-fit field validation.
#include "nfscale/scaling/points.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/util/json_number.h"

namespace nfscale::scaling {
namespace {


std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Splits one CSV line; supports double-quoted cells with "" escapes. Returns false on an unterminated quote.
bool split_csv_line(const std::string& line, std::vector<std::string>& cells) {
  cells.clear();
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  cells.push_back(trim(cur));
  return !quoted;
}

const std::vector<std::string>& known_columns() {
  static const std::vector<std::string> k = {"model", "params", "epochs", "examples", "flops",
                                             "lr",    "loss",   "top1_err", "seed"};
  return k;
}

std::string known_list() {
  std::string s;
  for (auto& c : known_columns()) s += (s.empty() ? "" : ", ") + c;
  return s;
}

}  // namespace

nlohmann::json to_json(const RunPoint& p) {
  return {{"model", p.model}, {"params", finite_or_null(p.params)}, {"epochs", finite_or_null(p.epochs)},
          {"examples", finite_or_null(p.examples)}, {"flops", finite_or_null(p.flops)}, {"lr", finite_or_null(p.lr)},
          {"loss", finite_or_null(p.loss)}, {"top1_err", finite_or_null(p.top1_err)}, {"seed", p.seed},
          {"origin", p.origin}};
}

std::vector<RunPoint> parse_points_csv(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> header, cells;
  std::vector<RunPoint> out;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::string where = source + " line " + std::to_string(lineno);
    require(split_csv_line(line, cells), where + ": unterminated double quote; close the quoted cell");
    if (header.empty()) {
      header = cells;
      std::map<std::string, int> seen;
      for (size_t c = 0; c < header.size(); ++c) {
        const std::string& h = header[c];
        bool known = false;
        for (auto& k : known_columns()) known = known || k == h;
        require(known, where + ", column " + std::to_string(c + 1) + ": unknown header '" + h +
                           "'; known columns are " + known_list());
        require(seen[h]++ == 0, where + ": column '" + h + "' appears twice in the header; keep one");
      }
      require(seen.count("loss") > 0, where + ": header has no 'loss' column; every fit needs the held-out loss");
      continue;
    }
    require(cells.size() == header.size(),
            where + ": has " + std::to_string(cells.size()) + " cells but the header has " +
                std::to_string(header.size()) + "; fix the row (quote cells that contain commas)");
    RunPoint p;
    p.origin = where;
    for (size_t c = 0; c < header.size(); ++c) {
      const std::string& col = header[c];
      const std::string& cell = cells[c];
      if (col == "model") {
        p.model = cell;
        continue;
      }
      if (cell.empty()) continue;  // missing optional value
      std::string here = where + ", column '" + col + "'";
      char* end = nullptr;
      double v = std::strtod(cell.c_str(), &end);
      require(end && *end == '\0', here + ": '" + cell + "' is not a number; write a plain decimal like 1.5e9");
      require(std::isfinite(v), here + ": value '" + cell + "' is not finite; remove the row or fix the value");
      if (col == "seed") {
        require(v == std::floor(v) && std::fabs(v) < 2e9, here + ": seed '" + cell + "' is not an integer");
        p.seed = static_cast<int>(v);
        continue;
      }
      if (col == "top1_err") {
        require(v >= 0 && v <= 1, here + ": top1_err " + cell + " is outside [0, 1]; give a fraction, not a percent");
        p.top1_err = v;
        continue;
      }
      require(v > 0, here + ": value " + cell + " must be positive");
      if (col == "params") p.params = v;
      else if (col == "epochs") p.epochs = v;
      else if (col == "examples") p.examples = v;
      else if (col == "flops") p.flops = v;
      else if (col == "lr") p.lr = v;
      else if (col == "loss") p.loss = v;
    }
    require(!std::isnan(p.loss), where + ", column 'loss': the held-out loss is empty; every fit needs it");
    if (p.model.empty() && std::isfinite(p.params)) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "N=%.3g", p.params);
      p.model = buf;
    }
    out.push_back(std::move(p));
  }
  require(!header.empty(), source + ": no header line; the first non-comment line must name the columns (" +
                               known_list() + ")");
  return out;
}

std::vector<RunPoint> read_points_csv(const std::string& path) { return parse_points_csv(read_file(path), path); }

const char* field_name(Field f) {
  switch (f) {
    case Field::Params: return "params";
    case Field::Epochs: return "epochs";
    case Field::Examples: return "examples";
    case Field::Flops: return "flops";
    case Field::Lr: return "lr";
    case Field::Loss: return "loss";
  }
  return "?";
}

double field_value(const RunPoint& p, Field f) {
  switch (f) {
    case Field::Params: return p.params;
    case Field::Epochs: return p.epochs;
    case Field::Examples: return p.examples;
    case Field::Flops: return p.flops;
    case Field::Lr: return p.lr;
    case Field::Loss: return p.loss;
  }
  return kMissing;
}

std::string describe_point(const RunPoint& p, std::size_t index) {
  if (!p.origin.empty()) return p.origin;
  return "point #" + std::to_string(index + 1) + (p.model.empty() ? "" : " (model " + p.model + ")");
}

void require_fields(const std::vector<RunPoint>& points, const std::vector<Field>& fields, const std::string& fit_name) {
  for (size_t i = 0; i < points.size(); ++i) {
    for (Field f : fields) {
      double v = field_value(points[i], f);
      if (std::isfinite(v) && v > 0) continue;
      std::string problem = std::isnan(v) ? std::string("has no '") + field_name(f) + "' value"
                                          : std::string("has ") + field_name(f) + " = " + std::to_string(v);
      throw UserError(fit_name + ": " + describe_point(points[i], i) + " " + problem +
                      "; this fit needs a positive finite '" + field_name(f) +
                      "' on every point (fill the column or drop the row)");
    }
  }
}

}  // namespace nfscale::scaling
