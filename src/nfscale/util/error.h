// error.h - the exception type for failures a user can cause (bad file, bad flag, bad config).
// Messages name the file or field, what is wrong, and how to fix it; the CLI prints them without a stack trace.
#pragma once
#include <stdexcept>
#include <string>

namespace nfscale {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws UserError(message) unless `ok`.
inline void require(bool ok, const std::string& message) {
  if (!ok) throw UserError(message);
}

}  // namespace nfscale
