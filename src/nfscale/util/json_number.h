// json_number.h - a double as JSON for result files: the number when finite, null for NaN or infinity (JSON has no
// NaN; nlohmann would write null anyway, but silently and only on dump). One definition for every writer.
#pragma once
#include <nlohmann/json.hpp>

#include <cmath>

namespace nfscale {

inline nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace nfscale
