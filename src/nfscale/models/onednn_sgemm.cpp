// onednn_sgemm.cpp - the dnnl_sgemm call, compiled without the LibTorch precompiled header (see src/CMakeLists.txt:
// NFSCALE_HAVE_DNNL is set on this file alone when the dnnl package is found).
#include "nfscale/models/onednn_sgemm.h"

#include <stdexcept>
#include <string>

#ifdef NFSCALE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace nfscale::models {

#ifdef NFSCALE_HAVE_DNNL
bool onednn_sgemm_built() { return true; }

void onednn_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta,
                                      C, ldc);
  if (st != dnnl_success)
    throw std::runtime_error("oneDNN sgemm failed (status " + std::to_string(static_cast<int>(st)) + ") for M " +
                             std::to_string(M) + ", N " + std::to_string(N) + ", K " + std::to_string(K));
}
#else
bool onednn_sgemm_built() { return false; }

void onednn_sgemm(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float, float*,
                  int64_t) {
  throw std::runtime_error("this nfscale build has no oneDNN sgemm (install libdnnl-dev and re-run CMake)");
}
#endif

}  // namespace nfscale::models
