// sql_backend.h - the SQL database a ResultsStore runs its protocol on: an interface with two implementations,
// SQLite (embedded, one file) and PostgreSQL (libpq, a server). Statements use `?` placeholders.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "nfscale/util/error.h"

namespace nfscale::store {

// A statement parameter or a result cell: NULL, integer, real or text.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

// One result row; accessors convert (PostgreSQL returns text, SQLite typed values).
struct SqlRow {
  std::vector<SqlValue> cells;
  bool is_null(size_t c) const { return std::holds_alternative<std::monostate>(cells.at(c)); }
  int64_t i64(size_t c) const;
  double f64(size_t c) const;
  std::string text(size_t c) const;
  std::optional<double> opt_f64(size_t c) const { return is_null(c) ? std::nullopt : std::optional<double>(f64(c)); }
};

struct SqlResult {
  std::vector<SqlRow> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE
};

// The connection to the server broke (server restarted, backend terminated, network gone). The operation may be
// retried on a new connection; `during_commit` says the COMMIT itself was in flight (its outcome is unknown).
class ConnectionLost : public UserError {
 public:
  ConnectionLost(const std::string& message, bool during_commit) : UserError(message), during_commit_(during_commit) {}
  bool during_commit() const { return during_commit_; }

 private:
  bool during_commit_;
};

class SqlBackend {
 public:
  virtual ~SqlBackend() = default;

  // Location for messages, password redacted.
  virtual const std::string& location() const = 0;
  virtual const char* name() const = 0;  // "SQLite" | "PostgreSQL"

  // Column types of the shared schema: integer primary key that never reuses ids, REAL, INTEGER.
  virtual const char* id_column_type() const = 0;
  virtual const char* real_type() const = 0;
  virtual const char* integer_type() const = 0;
  // Appended to a SELECT that picks rows to update: " FOR UPDATE SKIP LOCKED" where the server has row locks.
  virtual const char* skip_locked() const = 0;

  // One statement; `?` placeholders bound in order. Errors: UserError naming the location and `operation`
  // (ConnectionLost when the connection broke).
  virtual SqlResult exec(const std::string& sql, const std::vector<SqlValue>& params, const char* operation) = 0;
  // Several statements, no parameters (schema creation).
  virtual void exec_script(const std::string& sql, const char* operation) = 0;

  // Write transaction: SQLite takes the write lock at once (BEGIN IMMEDIATE); PostgreSQL uses row locks.
  virtual void begin_write(const char* operation) = 0;
  virtual void commit(const char* operation) = 0;
  virtual void rollback() noexcept = 0;
  // Inside a write transaction: serialise schema creation between processes.
  virtual void lock_schema(const char* operation) = 0;
  // Tables of the store's schema (SQLite: the file; PostgreSQL: the current schema).
  virtual std::vector<std::string> table_names() = 0;

  // After ConnectionLost: connects again. Throws ConnectionLost while the server stays unreachable.
  virtual void reconnect() = 0;
};

}  // namespace nfscale::store
