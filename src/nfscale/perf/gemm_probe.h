// gemm_probe.h - the GEMM peak probe of `nfscale bench`: the best GFLOP/s this machine reaches right now on an
// n x n x n product, the yardstick for "% of peak".
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace nfscale::perf {

// Best GFLOP/s of an n x n x n GEMM in `dtype` over `tries`, each try timing two routes and keeping the faster:
// at::matmul (oneDNN for bf16; OpenBLAS for fp32, which nfscale runs single-threaded, see util/runtime.h) and a
// 1x1 convolution over a channels_last [1, n, s, s] image with s*s = n (oneDNN for both dtypes, on every intra-op
// thread - the route the network's convolutions take). n must be a perfect square >= 1; tries >= 1.
double gemm_peak(torch::Dtype dtype, int64_t n, int tries);

}  // namespace nfscale::perf
