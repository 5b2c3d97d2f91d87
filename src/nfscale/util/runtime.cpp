// runtime.cpp - thread count and malloc tuning applied at start-up.
#include "nfscale/util/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include <ATen/Parallel.h>

// at::parallel_for (ATen/Parallel-inl.h) is inlined into the caller: against an OpenMP LibTorch it runs in parallel
// only where _OPENMP is defined, and silently runs the whole range on the calling thread elsewhere. Every nfscale
// target is compiled with LibTorch's threading (CMakeLists.txt links OpenMP::OpenMP_CXX through nfscale_pch).
#if AT_PARALLEL_OPENMP
#ifndef _OPENMP
#error "LibTorch uses OpenMP: compile nfscale with -fopenmp (CMake's OpenMP::OpenMP_CXX), or its kernels run on one thread"
#endif
#include <omp.h>
#endif

namespace nfscale {

int online_cores() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

// OpenBLAS's C API, looked up at run time: the BLAS behind libblas.so.3 is chosen by Debian's alternatives.
template <typename Fn>
Fn openblas_symbol(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, name));
}

// The settings `options` give after the NFSCALE_MALLOC_TUNE switch, clamped to what mallopt's int takes.
MallocTuning resolve_malloc(const RuntimeOptions& options) {
  bool tune = options.tune_malloc;
  if (const char* env = std::getenv("NFSCALE_MALLOC_TUNE")) tune = std::string(env) != "0";
  MallocTuning t;
  if (!tune) return t;
  t.tuned = true;
  t.mmap_threshold = std::min<size_t>(options.mmap_threshold, size_t(1) << 30);
  t.trim_threshold = std::min<size_t>(options.trim_threshold, (size_t(1) << 31) - 1);
  return t;
}

bool g_malloc_applied = false;
MallocTuning g_malloc;

}  // namespace

MallocTuning malloc_tuning() { return g_malloc_applied ? g_malloc : resolve_malloc({}); }

int blas_threads() {
  auto get = openblas_symbol<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

int configure_runtime(const RuntimeOptions& options) {
  int threads = options.threads;
  if (const char* env = std::getenv("NFSCALE_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) threads = v;
  }
  if (threads <= 0) {
    // A data-parallel rank (torchrun or --nproc set LOCAL_WORLD_SIZE) shares the cores with its local peers.
    int local_ranks = 1;
    if (const char* env = std::getenv("LOCAL_WORLD_SIZE")) local_ranks = std::max(1, std::atoi(env));
    threads = std::max(1, online_cores() / local_ranks);
  }
  at::set_num_threads(threads);
#if AT_PARALLEL_OPENMP
  // The same count in the OpenMP runtime nfscale's own parallel regions use: the same runtime as LibTorch's here
  // (Debian), a second one when an official LibTorch bundles its own libgomp.
  omp_set_num_threads(threads);
#endif

  int blas = options.blas_threads;
  if (const char* env = std::getenv("NFSCALE_BLAS_THREADS")) blas = std::atoi(env);
  if (blas > 0) {
    if (auto set = openblas_symbol<void (*)(int)>("openblas_set_num_threads")) set(blas);
  }

  const MallocTuning m = resolve_malloc(options);
  if (m.tuned) {
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(m.mmap_threshold));
    mallopt(M_TRIM_THRESHOLD, static_cast<int>(m.trim_threshold));
  }
  g_malloc = m;
  g_malloc_applied = true;
  return threads;
}

}  // namespace nfscale
