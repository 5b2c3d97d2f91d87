// bench_fused.cpp - the fused NFNet element-wise ops against their unfused ATen composition, forward + backward,
// bf16 and fp32, channels_last, at a mini-F3-like activation size [128, 96, 8, 8] and an F0@64-like [32, 256, 16, 16].
// Run: build-perf/bench/bench_fused --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "nfscale/models/fused_ops.h"

using namespace nfscale::models;

namespace {

torch::Tensor make(const benchmark::State& st, bool grad) {
  const auto dtype = st.range(0) ? torch::kBFloat16 : torch::kFloat;
  auto t = torch::randn({st.range(1), st.range(2), st.range(3), st.range(3)})
               .to(dtype)
               .contiguous(torch::MemoryFormat::ChannelsLast);
  return grad ? t.requires_grad_(true) : t;
}

void gelu_case(benchmark::State& st, bool fused) {
  auto x = make(st, true);
  auto g = torch::randn_like(x);
  for (auto _ : st) {
    auto y = fused ? fused_scaled_gelu(x, 1.7) : torch::gelu(x, "tanh") * 1.7 * 0.9;
    y.backward(g);
    x.mutable_grad().reset();
  }
  st.counters["elem/s"] = benchmark::Counter(double(x.numel()), benchmark::Counter::kIsIterationInvariantRate);
}

void tail_case(benchmark::State& st, bool fused) {
  auto sc = make(st, true), br = make(st, true);
  auto gate = torch::rand({st.range(1), st.range(2)}).requires_grad_(true);
  auto sg = torch::tensor(0.5f).requires_grad_(true);
  auto g = torch::randn_like(sc);
  for (auto _ : st) {
    torch::Tensor y;
    if (fused) {
      y = fused_residual_tail(sc, br, gate, {}, sg, 0.2);
    } else {
      y = br * (gate.to(br.scalar_type()).unsqueeze(-1).unsqueeze(-1) * 2.0) * sg * 0.2 + sc;
    }
    y.backward(g);
    for (auto* t : {&sc, &br, &gate, &sg}) t->mutable_grad().reset();
  }
  st.counters["elem/s"] = benchmark::Counter(double(sc.numel()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_GeluFused(benchmark::State& st) { gelu_case(st, true); }
void BM_GeluUnfused(benchmark::State& st) { gelu_case(st, false); }
void BM_TailFused(benchmark::State& st) { tail_case(st, true); }
void BM_TailUnfused(benchmark::State& st) { tail_case(st, false); }

// args: bf16?, B, C, H(=W)
#define SHAPES ->Args({1, 128, 96, 8})->Args({0, 128, 96, 8})->Args({1, 32, 256, 16})->UseRealTime()->MinTime(0.5)
BENCHMARK(BM_GeluFused) SHAPES;
BENCHMARK(BM_GeluUnfused) SHAPES;
BENCHMARK(BM_TailFused) SHAPES;
BENCHMARK(BM_TailUnfused) SHAPES;

}  // namespace

BENCHMARK_MAIN();
