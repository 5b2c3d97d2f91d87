// bench_optim.cpp - one SgdAgc step (unit-wise AGC, weight decay, Nesterov momentum) over a whole model's parameters,
// the fused single-pass update against the ATen composition (fused=false) side by side, with random gradients.
// F0 (71.5M parameters) is where the update is a visible share of the training step; mini-F3 is the study's size.
// Run: build/bench/bench_optim --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// The counter GB/s counts the bytes the update must move at least: parameters, gradients and momentum buffers read
// once and parameters and buffers written once (5 x 4 bytes per fp32 parameter).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "nfscale/models/classifier.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/sgd_agc.h"

#include "bench_main.h"

using namespace nfscale;

namespace {

void BM_SgdAgcStep(benchmark::State& st) {
  const char* names[] = {"mini-F3", "F0"};
  models::ModelConfig mc;
  mc.name = names[st.range(0)];
  mc.num_classes = st.range(0) ? 1000 : 10;
  mc.in_channels = st.range(0) ? 3 : 1;
  torch::manual_seed(0);
  auto model = models::build_model(mc);
  std::vector<optim::ParamSpec> specs = model->param_info();
  int64_t numel = 0;
  {
    torch::NoGradGuard no_grad;
    for (auto& s : specs) {
      s.param.mutable_grad() = torch::randn_like(s.param).mul_(1e-2);
      numel += s.param.numel();
    }
  }
  optim::SgdAgcOptions o;
  o.fused = st.range(1) != 0;
  optim::SgdAgc opt(specs, o);
  std::vector<torch::Tensor> raw;  // the step rewrites the gradients in place: restore them, untimed, every iteration
  for (auto& s : specs) raw.push_back(s.param.grad().clone());
  for (auto _ : st) {
    st.PauseTiming();
    for (size_t i = 0; i < specs.size(); ++i) specs[i].param.mutable_grad().copy_(raw[i]);
    st.ResumeTiming();
    benchmark::DoNotOptimize(opt.step(1e-3).grad_norm);
  }
  st.counters["params"] = double(numel);
  st.counters["GB/s"] =
      benchmark::Counter(5.0 * 4.0 * double(numel) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SgdAgcStep)->ArgsProduct({{0, 1}, {1, 0}})->ArgNames({"F0", "fused"})->UseRealTime()->MinTime(1.0);

}  // namespace

NFSCALE_BENCHMARK_MAIN()
