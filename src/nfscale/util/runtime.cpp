// runtime.cpp - thread count and malloc tuning applied at start-up.
#include "nfscale/util/runtime.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <ATen/Parallel.h>

namespace nfscale {

int online_cores() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int configure_runtime(const RuntimeOptions& options) {
  int threads = options.threads;
  if (const char* env = std::getenv("NFSCALE_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) threads = v;
  }
  if (threads <= 0) threads = online_cores();
  at::set_num_threads(threads);

  bool tune = options.tune_malloc;
  if (const char* env = std::getenv("NFSCALE_MALLOC_TUNE")) tune = std::string(env) != "0";
  if (tune) {
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(std::min<size_t>(options.mmap_threshold, 1u << 30)));
    mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min<size_t>(options.trim_threshold, (1u << 31) - 1)));
  }
  return threads;
}

}  // namespace nfscale
