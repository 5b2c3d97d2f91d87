// test_runtime.cpp - configure_runtime sets the intra-op thread count and OpenBLAS's thread count (when the BLAS
// behind libblas.so.3 is OpenBLAS, as scripts/setup.sh selects), and NFSCALE_BLAS_THREADS overrides the option.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

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

}  // namespace
}  // namespace nfscale
