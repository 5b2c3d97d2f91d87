// bench_fused.cpp - the fused NFNet element-wise ops against their unfused ATen composition, forward + backward,
// bf16 and fp32, channels_last, at a mini-F3-like activation size [128, 96, 8, 8] and an F0@64-like [32, 256, 16, 16].
// Also the weight standardisation rows over F0-sized weights, the direct 3x3 / 16-channel-group convolutions and the dense small-channel 3x3 convolutions (the stems, nano /
// micro-F0's first stages) against oneDNN at the ladders' shapes, and the fp32 channels_last training pass (forward + backward) of mini-F0 / mini-F3 @32 px with each route on or off.
// Run: build-perf/bench/bench_fused --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// A/B on a shared machine (interleaved, one thread, as the study's workers run):
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 build/bench/bench_fused --benchmark_filter='Conv3x3|Pass'
//       --benchmark_enable_random_interleaving=true --benchmark_repetitions=9 --benchmark_report_aggregates_only=true
// (compare CPU times when the machine is shared)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "nfscale/models/classifier.h"
#include "nfscale/models/dense_conv3x3.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/models/grouped_conv3x3.h"
#include "nfscale/models/layers.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/models/registry.h"

#include "bench_main.h"

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

// One WSConv2d 3x3 conv with 16-channel groups, fp32 channels_last, forward + backward. args: direct?, B, C, H(=W),
// stride.
void BM_Conv3x3(benchmark::State& st) {
  set_fused_ops(true);
  set_conv3x3_kernels(false);  // WSConv2d: oneDNN; the direct case calls grouped_conv3x3 itself
  const int64_t B = st.range(1), C = st.range(2), H = st.range(3), S = st.range(4);
  WSConv2d conv(C, C, 3, S, C / 16);
  auto x = to_channels_last(torch::randn({B, C, H, H})).requires_grad_(true);  // [B, C, H, H]
  const int64_t Ho = (H + S - 1) / S;
  auto g = to_channels_last(torch::randn({B, C, Ho, Ho}));
  const SamePad ph = same_padding(H, 3, S);
  for (auto _ : st) {
    // (the direct kernels called as the op, so maps above the route's pixel limit are timed too)
    auto y = st.range(0) ? grouped_conv3x3(x, conv->standardized_weight(), conv->bias, S, ph.before, ph.before,
                                           ph.out, ph.out)
                         : conv->forward(x);
    y.backward(g);
    x.mutable_grad().reset();
    conv->zero_grad();
  }
  set_conv3x3_kernels(true);
  st.counters["GFLOP/s"] = benchmark::Counter(3.0 * 2.0 * double(B * Ho * Ho * C * 16 * 9),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
// the ladder at 32 px (and stage 1 at 64 px): stage 1 (16 ch, 8x8), 2 (32 ch, 4x4), 3 and 4 (96 ch, 2x2 / 1x1), the strided entries
#define CONV_SHAPES(d)                                                                                          \
  ->Args({d, 128, 16, 16, 1})->Args({d, 128, 16, 8, 1})->Args({d, 128, 32, 4, 1})->Args({d, 128, 96, 2, 1})->Args({d, 128, 96, 1, 1})     \
      ->Args({d, 128, 32, 8, 2})->Args({d, 128, 96, 4, 2})->UseRealTime()->MinTime(0.3)
BENCHMARK(BM_Conv3x3) CONV_SHAPES(0);
BENCHMARK(BM_Conv3x3) CONV_SHAPES(1);

// Dense small-channel 3x3 conv (WSConv2d, weight standardisation included), forward + backward, batch 128, fp32
// channels_last; args: direct (0 oneDNN, 1 dense_conv3x3), in, out, input extent, stride.
void BM_DenseConv3x3(benchmark::State& st) {
  set_fused_ops(true);
  set_dense_conv3x3_kernels(st.range(0) == 1);
  const int64_t B = 128, C = st.range(1), O = st.range(2), H = st.range(3), S = st.range(4);
  WSConv2d conv(C, O, 3, S);
  auto x = to_channels_last(torch::randn({B, C, H, H})).requires_grad_(C > 1);  // [B, C, H, H]; the image: no grad
  const int64_t Ho = (H + S - 1) / S;
  auto g = to_channels_last(torch::randn({B, O, Ho, Ho}));
  for (auto _ : st) {
    conv->forward(x).backward(g);
    if (C > 1) x.mutable_grad().reset();
    conv->zero_grad();
  }
  set_dense_conv3x3_kernels(true);
  st.counters["GFLOP/s"] = benchmark::Counter(3.0 * 2.0 * double(B * Ho * Ho * C * O * 9),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
// the stems (1 -> 8 stride 2 at 32 px, 8 -> 8 at 16x16, 8 -> 4 / 8 / 16 stride 2), nano-F0's 4 -> 4 at 8x8 and
// 8 -> 8 at 4x4, micro-F0's 8 -> 8 at 8x8, and mini-F0's 16 -> 16 at 8x8 (not routed)
#define DENSE_SHAPES(d)                                                                                          \
  ->Args({d, 1, 8, 32, 2})->Args({d, 8, 8, 16, 1})->Args({d, 8, 4, 16, 2})->Args({d, 8, 8, 16, 2})             \
      ->Args({d, 8, 16, 16, 2})->Args({d, 4, 4, 8, 1})->Args({d, 8, 8, 4, 1})->Args({d, 8, 8, 8, 1})            \
      ->Args({d, 16, 16, 8, 1})->UseRealTime()->MinTime(0.3)
BENCHMARK(BM_DenseConv3x3) DENSE_SHAPES(0);
BENCHMARK(BM_DenseConv3x3) DENSE_SHAPES(1);

// Weight standardisation forward + backward over 8 weights of [1536, 1536, 1, 1] (18.9M fp32 parameters, more than
// the caches hold, like F0's 71.5M), fp32 weights with an fp32 (arg 0) or bf16 (arg 1, the bf16 autocast weight)
// output: the fused rows (fused_kernels.h) against the unfused ATen composition.
void ws_case(benchmark::State& st, bool fused) {
  const auto out_dtype = st.range(0) ? torch::kBFloat16 : torch::kFloat;
  std::vector<torch::Tensor> ws, gains, grads;
  for (int i = 0; i < 8; ++i) {
    ws.push_back((torch::randn({1536, 1536, 1, 1}) * 0.02).requires_grad_(true));
    gains.push_back(torch::ones({1536}).requires_grad_(true));
    grads.push_back(torch::randn({1536, 1536, 1, 1}).to(out_dtype));
  }
  for (auto _ : st) {
    for (int i = 0; i < 8; ++i) {
      auto y = fused ? fused_standardize_weight(ws[size_t(i)], gains[size_t(i)], 1e-4, out_dtype)
                     : standardize_weight(ws[size_t(i)], gains[size_t(i)], 1e-4).to(out_dtype);
      y.backward(grads[size_t(i)]);
      ws[size_t(i)].mutable_grad().reset();
      gains[size_t(i)].mutable_grad().reset();
    }
  }
  st.counters["params/s"] = benchmark::Counter(8.0 * 1536 * 1536, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_WsFused(benchmark::State& st) { ws_case(st, true); }
void BM_WsUnfused(benchmark::State& st) {
  set_fused_ops(false);  // standardize_weight itself takes the fused kernel while the fused ops are on
  ws_case(st, false);
  set_fused_ops(true);
}
BENCHMARK(BM_WsFused)->Arg(0)->Arg(1)->UseRealTime();
BENCHMARK(BM_WsUnfused)->Arg(0)->Arg(1)->UseRealTime();

// Forward + backward of a ladder member (fp32, channels_last, batch 128, 32 px, soft-target loss as the trainer's),
// args: member (0 mini-F0, 1 mini-F3), routes (bit 0: fused ops, bit 1: direct 3x3 convs (grouped and dense), bit 2:
// fp32 pointwise GEMM).
void BM_Pass(benchmark::State& st) {
  const char* names[] = {"mini-F0", "mini-F3"};
  ModelConfig mc;
  mc.name = names[st.range(0)];
  mc.num_classes = 10;
  mc.in_channels = 1;
  torch::manual_seed(0);
  auto model = build_model(mc);
  model->train();
  const int64_t B = 128;
  auto x = to_channels_last(torch::randn({B, 1, 32, 32}));
  auto y = torch::randint(0, 10, {B});
  const int64_t routes = st.range(1);
  set_fused_ops(routes & 1);
  set_conv3x3_kernels(routes & 2);
  set_dense_conv3x3_kernels(routes & 2);
  set_pointwise_gemm_fp32(routes & 4);
  for (auto _ : st) {
    model->zero_grad(/*set_to_none=*/true);
    torch::cross_entropy_loss(model->forward(x), y).backward();
  }
  set_fused_ops(true);
  set_conv3x3_kernels(true);
  set_dense_conv3x3_kernels(true);
  set_pointwise_gemm_fp32(true);
  st.counters["img/s"] = benchmark::Counter(double(B), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Pass)->ArgsProduct({{0, 1}, {1, 3, 7}})->UseRealTime()->MinTime(1.0);

}  // namespace

NFSCALE_BENCHMARK_MAIN()
