// bench_main.h - main() of nfscale's Google Benchmark programs (bench/*.cpp): the process runs with nfscale's own
// settings (glibc malloc thresholds, OpenBLAS threads; util/runtime.h), as `nfscale train` and `nfscale bench` do.
// Without them every large temporary is mmap'd and page-faulted anew each iteration, which is not what training
// sees. The intra-op thread count stays what OMP_NUM_THREADS (or LibTorch's default) gave.
#pragma once
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include "nfscale/util/runtime.h"

inline int nfscale_benchmark_main(int argc, char** argv) {
  nfscale::RuntimeOptions options;
  options.threads = at::get_num_threads();
  nfscale::configure_runtime(options);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#define NFSCALE_BENCHMARK_MAIN() \
  int main(int argc, char** argv) { return nfscale_benchmark_main(argc, argv); }
