// bench_test_util.h - the smallest real benchmark, shared by the perf tests.
#pragma once
#include "nfscale/perf/bench_run.h"

namespace nfscale::perf::testing {

// The smallest real case: mini-F0 at the minimum resolution, batch 2, one of everything, no peer.
inline BenchOptions tiny_options() {
  BenchOptions o;
  o.cases = {"mini-F0:17:2"};
  o.reps = 1;
  o.steps = 1;
  o.infer_steps = 1;
  o.peer = "none";
  o.precision = "fp32/channels_last";
  o.gemm_n = 16;
  return o;
}

}  // namespace nfscale::perf::testing
