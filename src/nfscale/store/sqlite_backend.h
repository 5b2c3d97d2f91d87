// sqlite_backend.h - the embedded SQL backend of the results store: one SQLite file shared by all workers of a host.
// WAL journal, busy_timeout, foreign keys on, synchronous=FULL; claims are atomic through BEGIN IMMEDIATE.
#pragma once
#include <string>

#include "nfscale/store/sql_backend.h"

struct sqlite3;

namespace nfscale::store {

class SqliteBackend final : public SqlBackend {
 public:
  // Opens (creating if absent, with its parent folders) the SQLite file at `path`.
  explicit SqliteBackend(const std::string& path, double busy_timeout_s = 60.0);
  ~SqliteBackend() override;
  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  const std::string& location() const override { return path_; }
  const char* name() const override { return "SQLite"; }
  const char* id_column_type() const override { return "INTEGER PRIMARY KEY AUTOINCREMENT"; }
  const char* real_type() const override { return "REAL"; }
  const char* integer_type() const override { return "INTEGER"; }
  const char* skip_locked() const override { return ""; }  // BEGIN IMMEDIATE already serialises writers

  SqlResult exec(const std::string& sql, const std::vector<SqlValue>& params, const char* operation) override;
  void exec_script(const std::string& sql, const char* operation) override;
  void begin_write(const char* operation) override { exec_script("BEGIN IMMEDIATE", operation); }
  void commit(const char* operation) override { exec_script("COMMIT", operation); }
  void rollback() noexcept override;
  void lock_schema(const char*) override {}
  std::vector<std::string> table_names() override;
  void reconnect() override {}  // a file does not disconnect

 private:
  [[noreturn]] void fail(int rc, const char* operation) const;

  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace nfscale::store
