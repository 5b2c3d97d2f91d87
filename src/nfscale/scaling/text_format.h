// text_format.h - printf-style formatting into a std::string for the scaling fits' tables and reason strings.
#pragma once
#include <string>

namespace nfscale::scaling {

// vsnprintf into a string (output longer than 1023 characters is cut).
std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace nfscale::scaling
