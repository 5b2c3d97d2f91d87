// sqlite_backend.cpp - SQLite connection of the results store: open, statements with bound values, error hints.
#include "nfscale/store/sqlite_backend.h"

#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include "nfscale/util/atomic_file.h"

namespace nfscale::store {
namespace {

std::string hint_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return "the file is not an SQLite database or is damaged; pass another database path or move this file away";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process held the database lock past the busy timeout; retry, or look for a stuck worker";
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return "check that the file and its directory exist and are writable";
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return "check free disk space and the file system";
    case SQLITE_CONSTRAINT:
      return "the row violates the schema (e.g. an eval point for a trial id that does not exist)";
    default:
      return "see docs/results-db.md";
  }
}

}  // namespace

void SqliteBackend::fail(int rc, const char* operation) const {
  std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string code = sqlite3_errstr(rc);
  if (code != msg) msg += " (" + code + ")";
  throw UserError("results database " + path_ + ": " + operation + " failed: " + msg + "; " + hint_for(rc));
}

SqliteBackend::SqliteBackend(const std::string& path, double busy_timeout_s) : path_(path) {
  require(!path.empty(), "results database path is empty; pass a file path such as runs/study.db");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  try {
    if (rc != SQLITE_OK) fail(rc, "open");
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout_s * 1000.0));
    exec_script("PRAGMA journal_mode=WAL", "enable WAL journal");
    exec_script("PRAGMA synchronous=FULL", "set synchronous=FULL");
    exec_script("PRAGMA foreign_keys=ON", "enable foreign keys");
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteBackend::~SqliteBackend() {
  if (db_) sqlite3_close_v2(db_);
}

void SqliteBackend::exec_script(const std::string& sql, const char* operation) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) fail(rc, operation);
}

void SqliteBackend::rollback() noexcept { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

SqlResult SqliteBackend::exec(const std::string& sql, const std::vector<SqlValue>& params, const char* operation) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  if (rc != SQLITE_OK) fail(rc, operation);
  for (size_t i = 0; i < params.size(); ++i) {
    const int slot = static_cast<int>(i + 1);
    const SqlValue& v = params[i];
    if (auto* n = std::get_if<int64_t>(&v))
      rc = sqlite3_bind_int64(raw, slot, *n);
    else if (auto* d = std::get_if<double>(&v))
      rc = sqlite3_bind_double(raw, slot, *d);
    else if (auto* s = std::get_if<std::string>(&v))
      rc = sqlite3_bind_text(raw, slot, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    else
      rc = sqlite3_bind_null(raw, slot);
    if (rc != SQLITE_OK) fail(rc, operation);
  }
  SqlResult out;
  const int ncol = sqlite3_column_count(raw);
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    SqlRow row;
    row.cells.reserve(static_cast<size_t>(ncol));
    for (int c = 0; c < ncol; ++c) {
      switch (sqlite3_column_type(raw, c)) {
        case SQLITE_NULL: row.cells.emplace_back(std::monostate{}); break;
        case SQLITE_INTEGER: row.cells.emplace_back(static_cast<int64_t>(sqlite3_column_int64(raw, c))); break;
        case SQLITE_FLOAT: row.cells.emplace_back(sqlite3_column_double(raw, c)); break;
        default: {
          const unsigned char* p = sqlite3_column_text(raw, c);
          row.cells.emplace_back(std::string(reinterpret_cast<const char*>(p),
                                             static_cast<size_t>(sqlite3_column_bytes(raw, c))));
        }
      }
    }
    out.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) fail(rc, operation);
  out.affected = sqlite3_changes(db_);
  return out;
}

std::vector<std::string> SqliteBackend::table_names() {
  std::vector<std::string> out;
  for (auto& r : exec("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'", {},
                      "read schema")
                     .rows)
    out.push_back(r.text(0));
  return out;
}

}  // namespace nfscale::store
