// onednn_sgemm.h - oneDNN's fp32 GEMM (dnnl_sgemm, row-major) where the build found Debian's libdnnl-dev, for the
// pointwise-conv route (pointwise_linear.h). Measured single-threaded at the ladders' 1x1-conv shapes (M = 128-8192
// rows, K, N = 16-192) it ran 1.05-1.55x OpenBLAS's sgemm (docs/performance.md, issue 12 session 9). No torch here.
#pragma once
#include <cstdint>

namespace nfscale::models {

// True when this build links oneDNN's sgemm (CMake found the `dnnl` package).
bool onednn_sgemm_built();

// C[M, N] = op(A) op(B) + beta C, all row-major fp32; op(X) = X or X^T (trans_a / trans_b). A is [M, K] (or
// [K, M] transposed) with leading dimension lda, B is [K, N] (or [N, K]) with ldb, C has ldc. Threads: oneDNN's
// OpenMP setting (at::set_num_threads). Throws std::runtime_error when not built or when oneDNN reports an error.
void onednn_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace nfscale::models
