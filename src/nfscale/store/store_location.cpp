// store_location.cpp - classification and password redaction of results-store locations.
#include "nfscale/store/store_location.h"

#include <cctype>

namespace nfscale::store {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A password span inside a URI: [begin, end) of the raw text.
struct Span {
  size_t begin, end;
};

// Spans of the userinfo password and of every password=... query value.
std::vector<Span> password_spans(const std::string& uri) {
  std::vector<Span> spans;
  if (store_kind(uri) != StoreKind::Postgres) return spans;
  const size_t auth = uri.find("://") + 3;
  size_t auth_end = uri.find_first_of("/?#", auth);
  if (auth_end == std::string::npos) auth_end = uri.size();
  const size_t at = uri.rfind('@', auth_end);
  if (at != std::string::npos && at >= auth) {
    const size_t colon = uri.find(':', auth);
    if (colon != std::string::npos && colon < at) spans.push_back({colon + 1, at});
  }
  const size_t query = uri.find('?', auth_end);
  if (query != std::string::npos) {
    size_t p = query + 1;
    while (p < uri.size()) {
      size_t amp = uri.find('&', p);
      if (amp == std::string::npos) amp = uri.size();
      if (uri.compare(p, 9, "password=") == 0) spans.push_back({p + 9, amp});
      p = amp + 1;
    }
  }
  return spans;
}

}  // namespace

StoreKind store_kind(const std::string& location) {
  return starts_with(location, "postgresql://") || starts_with(location, "postgres://") ? StoreKind::Postgres
                                                                                         : StoreKind::Sqlite;
}

std::string redact_location(const std::string& location) {
  std::string out = location;
  auto spans = password_spans(location);
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) out.replace(it->begin, it->end - it->begin, "***");
  return out;
}

std::vector<std::string> location_secrets(const std::string& location) {
  std::vector<std::string> out;
  for (auto& s : password_spans(location)) {
    std::string raw = location.substr(s.begin, s.end - s.begin);
    if (raw.empty()) continue;
    out.push_back(raw);
    std::string decoded = percent_decode(raw);
    if (decoded != raw) out.push_back(decoded);
  }
  return out;
}

std::string scrub_secrets(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (size_t p = text.find(s); p != std::string::npos; p = text.find(s, p + 3)) text.replace(p, s.size(), "***");
  }
  return text;
}

}  // namespace nfscale::store
