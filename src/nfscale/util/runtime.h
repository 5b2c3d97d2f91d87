// runtime.h - process-wide runtime tuning: intra-op threads and glibc malloc thresholds.
// LibTorch 1.13 defaults to half the cores (1.6-1.8x slower on 2 cores); glibc's default mmap/trim thresholds
// return and re-fault large activation buffers every step (10-15% on training steps). OpenBLAS (Debian's pthread
// build, which LibTorch calls for linear layers) keeps its own pool of one thread per core that fights the OpenMP
// threads: the squeeze-excite and classifier GEMMs of mini-F3 (tiny, [128,192]x[192,96]) took ~0.9 ms each instead
// of ~0.05 ms, 19% of a training step, so OpenBLAS runs single-threaded unless told otherwise.
#pragma once
#include <cstddef>

namespace nfscale {

struct RuntimeOptions {
  int threads = 0;  // intra-op threads; 0 = online cores / LOCAL_WORLD_SIZE (env NFSCALE_THREADS overrides)
  bool tune_malloc = true;                // raise glibc M_MMAP_THRESHOLD / M_TRIM_THRESHOLD (env NFSCALE_MALLOC_TUNE=0)
  size_t mmap_threshold = size_t(1) << 30;  // bytes; allocations below this come from the heap
  size_t trim_threshold = size_t(1) << 31;  // bytes of free heap kept before trimming
  int blas_threads = 1;                   // OpenBLAS threads; 0 = OpenBLAS's default (env NFSCALE_BLAS_THREADS overrides)
};

// Applies the options; returns the thread count in use. Safe to call more than once.
int configure_runtime(const RuntimeOptions& options = {});

// The glibc malloc thresholds this process runs with: what the last configure_runtime applied, or, before any call,
// what configure_runtime({}) would apply (env NFSCALE_MALLOC_TUNE included). The bench hands these to its Python
// peer (perf/peer_process.cpp, env NFSCALE_PEER_MALLOC) so both sides run with the same settings from one source.
struct MallocTuning {
  bool tuned = false;         // false: glibc's defaults
  size_t mmap_threshold = 0;  // bytes, as passed to mallopt (clamped to glibc's limits); 0 when not tuned
  size_t trim_threshold = 0;
};
MallocTuning malloc_tuning();

// OpenBLAS's thread count as set now, or -1 when the BLAS in use is not OpenBLAS.
int blas_threads();

// Number of online cores.
int online_cores();

}  // namespace nfscale
