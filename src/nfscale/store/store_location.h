// store_location.h - what `--db` names (an SQLite file path or a postgresql:// URI) and its password-free form.
// A password written into a URI must never reach logs, messages, reports or files: everything shown goes through
// redact_location / scrub_secrets.
#pragma once
#include <string>
#include <vector>

namespace nfscale::store {

enum class StoreKind { Sqlite, Postgres };

// Postgres for "postgresql://..." and "postgres://..." (libpq's URI forms), Sqlite for anything else (a path).
StoreKind store_kind(const std::string& location);

// The location with the password of a URI (user:PASSWORD@ and any password=... query parameter) replaced by ***.
// Paths come back unchanged.
std::string redact_location(const std::string& location);

// The passwords a location carries, as written and percent-decoded (empty for paths and password-free URIs).
std::vector<std::string> location_secrets(const std::string& location);

// `text` with every occurrence of each non-empty secret replaced by ***.
std::string scrub_secrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace nfscale::store
