// postgres_backend.cpp - libpq connection of the results store: connect with clear errors, statements with text
// parameters, broken-connection detection and reconnection.
#include "nfscale/store/postgres_backend.h"

#include <libpq-fe.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "nfscale/store/store_location.h"

namespace nfscale::store {
namespace {

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  for (size_t p; (p = s.find("  ")) != std::string::npos;) s.erase(p, 1);
  return s;
}

std::string connect_hint(const std::string& msg) {
  if (has(msg, "password authentication failed") || has(msg, "no password supplied") ||
      has(msg, "authentication failed"))
    return "authentication failed: give the password in ~/.pgpass or a file named by PGPASSFILE (or PGPASSWORD), "
           "see docs/results-db.md";
  if (has(msg, "role") && has(msg, "does not exist"))
    return "the user does not exist on this server; fix the user in the URI or create the role";
  if (has(msg, "database") && has(msg, "does not exist"))
    return "create the database first (createdb NAME) or fix the database name in the URI";
  if (has(msg, "invalid URI") || has(msg, "invalid connection option") || has(msg, "invalid integer value") ||
      has(msg, "missing \"=\""))
    return "fix the URI: postgresql://[user@]host[:port]/dbname[?host=/socket/dir] (docs/results-db.md)";
  if (has(msg, "invalid response to SSL negotiation") || has(msg, "expected authentication request") ||
      has(msg, "unsupported frontend protocol") || has(msg, "server closed the connection unexpectedly"))
    return "whatever listens at this host and port is not a PostgreSQL server; check host and port in the URI";
  return "the server is unreachable: is it running, and are host and port in the URI right? (pg_isready tells)";
}

std::string sqlstate_hint(const std::string& state) {
  if (state.rfind("23", 0) == 0)
    return "the row violates the schema (e.g. an eval point for a trial id that does not exist)";
  if (state == "42501") return "the role lacks privileges; grant it CREATE, SELECT, INSERT and UPDATE on the database";
  if (state == "42P01" || state == "42703")
    return "the database does not hold an nfscale results store of this version; pass another database";
  if (state.rfind("53", 0) == 0) return "the server is out of resources (disk, memory or connections)";
  if (state == "40001" || state == "40P01") return "a concurrent transaction conflicted; retry";
  return "see docs/results-db.md";
}

std::string pg_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// `?` placeholders (outside quoted literals) to PostgreSQL's $1, $2, ...
std::string numbered_placeholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted)
      out += "$" + std::to_string(++n);
    else
      out += c;
  }
  return out;
}

void ignore_notice(void*, const char*) {}

}  // namespace

PostgresBackend::PostgresBackend(const std::string& uri)
    : uri_(uri), display_(redact_location(uri)), secrets_(location_secrets(uri)) {
  connect();
}

PostgresBackend::~PostgresBackend() {
  if (conn_) PQfinish(conn_);
}

void PostgresBackend::connect() {
  if (conn_) PQfinish(conn_);
  // Later keywords override the URI's (expand_dbname); connect_timeout comes first so the URI may override it.
  const char* keys[] = {"connect_timeout", "dbname", "fallback_application_name", nullptr};
  const char* vals[] = {"10", uri_.c_str(), "nfscale", nullptr};
  conn_ = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!conn_) throw UserError("results database " + display_ + ": cannot connect: libpq is out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string msg = trim(scrub_secrets(PQerrorMessage(conn_), secrets_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw UserError("results database " + display_ + ": cannot connect: " + msg + "; " + connect_hint(msg));
  }
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
  const int version = PQserverVersion(conn_);
  if (version < 90500) {
    PQfinish(conn_);
    conn_ = nullptr;
    throw UserError("results database " + display_ + ": the server runs PostgreSQL " + std::to_string(version) +
                    ", too old: claims need SELECT ... FOR UPDATE SKIP LOCKED (9.5 or newer); use a newer server");
  }
}

void PostgresBackend::require_connected(const char* operation) const {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK)
    throw ConnectionLost("results database " + display_ + ": " + operation + " failed: not connected", false);
}

void PostgresBackend::check(const PGresult* res, const char* operation, bool is_commit) const {
  const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
  const std::string msg = trim(scrub_secrets(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_), secrets_));
  const std::string prefix = "results database " + display_ + ": " + operation + " failed: ";
  if (PQstatus(conn_) == CONNECTION_BAD)
    throw ConnectionLost(prefix + "the connection to the server was lost (" + msg + ")", is_commit);
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  throw UserError(prefix + msg + "; " + sqlstate_hint(state ? state : ""));
}

SqlResult PostgresBackend::run(const std::string& sql, const std::vector<SqlValue>& params, const char* operation,
                               bool is_commit) {
  require_connected(operation);
  std::vector<std::string> text(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  for (size_t i = 0; i < params.size(); ++i) {
    const SqlValue& v = params[i];
    if (auto* n = std::get_if<int64_t>(&v))
      text[i] = std::to_string(*n);
    else if (auto* d = std::get_if<double>(&v))
      text[i] = pg_text(*d);
    else if (auto* s = std::get_if<std::string>(&v))
      text[i] = *s;
    else
      continue;  // NULL
    values[i] = text[i].c_str();
  }
  const std::string numbered = numbered_placeholders(sql);
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(
      PQexecParams(conn_, numbered.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                   nullptr, 0),
      PQclear);
  check(res.get(), operation, is_commit);
  SqlResult out;
  const int nrows = PQntuples(res.get()), ncols = PQnfields(res.get());
  out.rows.resize(static_cast<size_t>(nrows));
  for (int r = 0; r < nrows; ++r) {
    auto& cells = out.rows[static_cast<size_t>(r)].cells;
    cells.reserve(static_cast<size_t>(ncols));
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res.get(), r, c))
        cells.emplace_back(std::monostate{});
      else
        cells.emplace_back(std::string(PQgetvalue(res.get(), r, c), static_cast<size_t>(PQgetlength(res.get(), r, c))));
    }
  }
  const char* tuples = PQcmdTuples(res.get());
  out.affected = tuples && *tuples ? std::atoll(tuples) : 0;
  return out;
}

SqlResult PostgresBackend::exec(const std::string& sql, const std::vector<SqlValue>& params, const char* operation) {
  return run(sql, params, operation, false);
}

void PostgresBackend::exec_script(const std::string& sql, const char* operation) {
  require_connected(operation);
  std::unique_ptr<PGresult, void (*)(PGresult*)> res(PQexec(conn_, sql.c_str()), PQclear);
  check(res.get(), operation, false);
}

void PostgresBackend::begin_write(const char* operation) { run("BEGIN", {}, operation, false); }

void PostgresBackend::commit(const char* operation) { run("COMMIT", {}, operation, true); }

void PostgresBackend::rollback() noexcept {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE)
    PQclear(PQexec(conn_, "ROLLBACK"));
}

void PostgresBackend::lock_schema(const char* operation) {
  // Transaction-scoped advisory lock: concurrent first opens create the schema once.
  run("SELECT pg_advisory_xact_lock(7031996451)", {}, operation, false);
}

std::vector<std::string> PostgresBackend::table_names() {
  std::vector<std::string> out;
  for (auto& r : run("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()", {},
                     "read schema", false)
                     .rows)
    out.push_back(r.text(0));
  return out;
}

void PostgresBackend::reconnect() {
  try {
    connect();
  } catch (const UserError& e) {
    throw ConnectionLost(e.what(), false);
  }
}

int PostgresBackend::backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }

}  // namespace nfscale::store
