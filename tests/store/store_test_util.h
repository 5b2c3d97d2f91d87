// store_test_util.h - throwaway results stores for tests on both backends: a temporary SQLite file, or a fresh
// database in the test PostgreSQL cluster named by NFSCALE_TEST_PG (scripts/test.sh starts and stops one).
#pragma once
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "nfscale/store/store_location.h"

namespace nfscale::store::test_util {

// Superuser URI of the throwaway test cluster, or "" when not set.
inline std::string test_pg_admin_uri() {
  const char* v = std::getenv("NFSCALE_TEST_PG");
  return v ? v : "";
}

inline bool running_in_ci() {
  const char* v = std::getenv("CI");
  return v && std::string(v) == "true";
}

inline const char* kNoPgMessage =
    "PostgreSQL tests need NFSCALE_TEST_PG, a superuser URI of a throwaway cluster: run scripts/test.sh, or "
    "`scripts/pg-test-cluster.sh start` and export the variable it prints";

// In a test body or SetUp: skips (developer machine) or fails (CI=true) when no test cluster is configured.
#define NFSCALE_REQUIRE_TEST_PG()                                                     \
  do {                                                                                \
    if (::nfscale::store::test_util::test_pg_admin_uri().empty()) {                     \
      if (::nfscale::store::test_util::running_in_ci()) FAIL() << ::nfscale::store::test_util::kNoPgMessage; \
      GTEST_SKIP() << ::nfscale::store::test_util::kNoPgMessage;                        \
    }                                                                                 \
  } while (0)

// `uri` with its database replaced by `db` and, when given, its user[:password] by `userinfo`.
inline std::string pg_uri_with(const std::string& uri, const std::string& db, const std::string& userinfo = "") {
  const size_t auth = uri.find("://") + 3;
  size_t path = uri.find_first_of("/?", auth);
  if (path == std::string::npos) path = uri.size();
  size_t query = uri.find('?', path);
  if (query == std::string::npos) query = uri.size();
  std::string authority = uri.substr(auth, path - auth);
  if (!userinfo.empty()) {
    const size_t at = authority.rfind('@');
    authority = userinfo + "@" + (at == std::string::npos ? authority : authority.substr(at + 1));
  }
  return uri.substr(0, auth) + authority + "/" + db + uri.substr(query);
}

// Runs SQL at the PostgreSQL URI `uri`; returns the rows as text. Fails the test on error.
inline std::vector<std::vector<std::string>> pg_query(const std::string& uri, const std::string& sql) {
  std::vector<std::vector<std::string>> rows;
  PGconn* c = PQconnectdb(uri.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    ADD_FAILURE() << "connection: " << PQerrorMessage(c);
    PQfinish(c);
    return rows;
  }
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);  // e.g. "role ... does not exist, skipping"
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
  for (int i = 0; i < PQntuples(r); ++i) {
    rows.emplace_back();
    for (int j = 0; j < PQnfields(r); ++j) rows.back().push_back(PQgetvalue(r, i, j));
  }
  PQclear(r);
  PQfinish(c);
  return rows;
}

// Runs SQL as the cluster's superuser in database `db`; returns the rows as text. Fails the test on error.
inline std::vector<std::vector<std::string>> pg_admin(const std::string& sql, const std::string& db = "postgres") {
  return pg_query(pg_uri_with(test_pg_admin_uri(), db), sql);
}

// A fresh, empty store location for one test, removed afterwards: a file in a temporary folder, or a new
// PostgreSQL database (owned by `owner` when given). dir() is a temporary folder for the test's files either way.
class ScratchStore {
 public:
  ScratchStore(StoreKind kind, const std::string& name, const std::string& owner = "") : kind_(kind) {
    static std::atomic<int> counter{0};
    const std::string unique = std::to_string(::getpid()) + "_" + std::to_string(counter++);
    dir_ = std::filesystem::temp_directory_path() / ("nfscale_store_" + name + "_" + unique);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (kind == StoreKind::Sqlite) {
      location_ = (dir_ / "results.sqlite").string();
      return;
    }
    db_ = "nfscale_t_" + unique;
    pg_admin("CREATE DATABASE " + db_ + (owner.empty() ? "" : " OWNER " + owner));
    location_ = pg_uri_with(test_pg_admin_uri(), db_);
  }
  ~ScratchStore() {
    if (!db_.empty()) pg_admin("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
    std::filesystem::remove_all(dir_);
  }
  ScratchStore(const ScratchStore&) = delete;
  ScratchStore& operator=(const ScratchStore&) = delete;

  const std::string& location() const { return location_; }
  const std::string& database() const { return db_; }  // "" for SQLite
  const std::filesystem::path& dir() const { return dir_; }
  StoreKind kind() const { return kind_; }

  // Runs raw SQL on the store behind the protocol's back (to plant foreign tables or a newer schema version).
  void raw_sql(const std::string& sql) const;

 private:
  StoreKind kind_;
  std::filesystem::path dir_;
  std::string location_, db_;
};

inline void ScratchStore::raw_sql(const std::string& sql) const {
  if (kind_ == StoreKind::Postgres) {
    pg_admin(sql, db_);
    return;
  }
  sqlite3* raw = nullptr;
  char* err = nullptr;
  if (sqlite3_open(location_.c_str(), &raw) != SQLITE_OK || sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK)
    ADD_FAILURE() << sql << ": " << (err ? err : sqlite3_errmsg(raw));
  sqlite3_free(err);
  sqlite3_close(raw);
}

}  // namespace nfscale::store::test_util
