// test_runtime.cpp - configure_runtime sets the intra-op thread count and OpenBLAS's thread count (when the BLAS
// behind libblas.so.3 is OpenBLAS, as scripts/setup.sh selects), and NFSCALE_BLAS_THREADS overrides the option;
// data-parallel ranks split the cores by LOCAL_WORLD_SIZE.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "nfscale/util/runtime.h"

namespace nfscale {
namespace {

TEST(Runtime, SetsIntraOpAndBlasThreads) {
  if (blas_threads() < 0) GTEST_SKIP() << "the BLAS in use is not OpenBLAS";
  RuntimeOptions o;
  o.threads = 1;
  o.blas_threads = 2;
  EXPECT_EQ(configure_runtime(o), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(blas_threads(), 2);
  o.blas_threads = 1;
  configure_runtime(o);
  EXPECT_EQ(blas_threads(), 1);
  ::setenv("NFSCALE_BLAS_THREADS", "2", 1);
  configure_runtime(o);
  EXPECT_EQ(blas_threads(), 2);
  ::unsetenv("NFSCALE_BLAS_THREADS");
  o.blas_threads = 0;  // 0 leaves OpenBLAS as it is
  configure_runtime(o);
  EXPECT_EQ(blas_threads(), 2);
  o.blas_threads = 1;
  configure_runtime(o);
}

// A data-parallel rank (LOCAL_WORLD_SIZE set by torchrun or --nproc) takes its share of the cores by default;
// --threads (RuntimeOptions::threads) still wins.
TEST(Runtime, DataParallelRanksShareTheCores) {
  ::unsetenv("NFSCALE_THREADS");
  const int cores = online_cores();
  RuntimeOptions o;
  o.blas_threads = 0;  // leave OpenBLAS alone
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  EXPECT_EQ(configure_runtime(o), std::max(1, cores / 2));
  ::setenv("LOCAL_WORLD_SIZE", "1000", 1);
  EXPECT_EQ(configure_runtime(o), 1);
  o.threads = 3;
  EXPECT_EQ(configure_runtime(o), 3);
  ::unsetenv("LOCAL_WORLD_SIZE");
  o.threads = 0;
  EXPECT_EQ(configure_runtime(o), cores);
}

// at::parallel_for compiled in nfscale code runs on every intra-op thread (it ran the whole range on the calling thread
// when nfscale was compiled without -fopenmp against the OpenMP LibTorch: all its kernels were single-threaded).
TEST(Runtime, ParallelForInNfscaleCodeRunsOnEveryThread) {
  ::unsetenv("NFSCALE_THREADS");
  RuntimeOptions o;
  o.threads = 2;
  o.blas_threads = 0;
  ASSERT_EQ(configure_runtime(o), 2);
  std::atomic<int> seen{0};  // bit t: thread t ran a chunk
  at::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) { seen |= 1 << at::get_thread_num(); });
  EXPECT_EQ(seen.load(), 0b11) << "at::parallel_for used threads with mask " << seen.load() << " of 2";
  o.threads = 0;
  configure_runtime(o);
}

}  // namespace
}  // namespace nfscale
