// sql_backend.cpp - conversions of result cells (typed SQLite values or PostgreSQL text).
#include "nfscale/store/sql_backend.h"

#include <cstdlib>
#include <string>

namespace nfscale::store {

int64_t SqlRow::i64(size_t c) const {
  const SqlValue& v = cells.at(c);
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  return 0;
}

double SqlRow::f64(size_t c) const {
  const SqlValue& v = cells.at(c);
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto* s = std::get_if<std::string>(&v)) return std::strtod(s->c_str(), nullptr);  // also NaN, Infinity
  return 0.0;
}

std::string SqlRow::text(size_t c) const {
  const SqlValue& v = cells.at(c);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return std::to_string(*d);
  return std::string();
}

}  // namespace nfscale::store
