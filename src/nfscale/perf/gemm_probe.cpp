// gemm_probe.cpp - the GEMM peak probe (see gemm_probe.h).
#include "nfscale/perf/gemm_probe.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "nfscale/util/error.h"

namespace nfscale::perf {

double gemm_peak(torch::Dtype dtype, int64_t n, int tries) {
  using Clock = std::chrono::steady_clock;
  const auto s = int64_t(std::lround(std::sqrt(double(n))));
  require(n >= 1 && s * s == n && tries >= 1, "gemm_peak: n must be a perfect square and tries >= 1");
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);                  // [n, n] each
  auto x = torch::randn({1, n, s, s}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);  // [1, n, s, s]
  auto w = torch::randn({n, n, 1, 1}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);  // [n, n, 1, 1]
  torch::NoGradGuard ng;
  torch::matmul(a, b);
  torch::conv2d(x, w);
  auto gflops = [](double flop, Clock::time_point t0) {
    return flop / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9;
  };
  const double flop = 2.0 * double(n) * double(n) * double(n);  // matmul: n^3 MACs; conv: n*s*s*n MACs, the same
  double best = 0.0;
  for (int i = 0; i < tries; ++i) {
    auto t0 = Clock::now();
    auto c = torch::matmul(a, b);  // [n, n]
    best = std::max(best, gflops(flop, t0));
    t0 = Clock::now();
    auto y = torch::conv2d(x, w);  // [1, n, s, s]
    best = std::max(best, gflops(flop, t0));
  }
  return best;
}

}  // namespace nfscale::perf
