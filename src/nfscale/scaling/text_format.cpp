// text_format.cpp - printf-style formatting into a std::string (see text_format.h).
#include "nfscale/scaling/text_format.h"

#include <cstdarg>
#include <cstdio>

namespace nfscale::scaling {

std::string fmt(const char* format, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  return buf;
}

}  // namespace nfscale::scaling
