// conv_test_util.h - helpers shared by the tests of the direct convolution kernels (test_grouped_conv3x3.cpp,
// test_dense_conv3x3.cpp; the route switch and max_abs also by test_squeeze_excite_tail.cpp): the ISAs this CPU runs,
// relative errors, and the autograd node a WSConv2d output comes from.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "nfscale/models/layers.h"
#include "nfscale/train/autocast.h"
#include "nfscale/util/cpu_features.h"

namespace nfscale::models::test {

// For the scope: a route's ISA forced (Force(isa); Force("") at the end) and its switch set (Set(on); Set(true) at the
// end: the default the tests run under).
template <void (*Force)(const std::string&)>
struct ForceIsa {
  explicit ForceIsa(const std::string& isa) { Force(isa); }
  ~ForceIsa() { Force(""); }
  ForceIsa(const ForceIsa&) = delete;
  ForceIsa& operator=(const ForceIsa&) = delete;
};
template <void (*Set)(bool)>
struct RouteSwitch {
  explicit RouteSwitch(bool on) { Set(on); }
  ~RouteSwitch() { Set(true); }
  RouteSwitch(const RouteSwitch&) = delete;
  RouteSwitch& operator=(const RouteSwitch&) = delete;
};

// "generic", then "avx2" and "avx512" when this CPU runs them.
inline std::vector<std::string> isas_this_cpu_runs() {
  std::vector<std::string> v = {"generic"};
  if (cpu_features().avx2) v.push_back("avx2");
  if (cpu_features().avx512) v.push_back("avx512");
  return v;
}

inline double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }
// max |a - r| relative to the largest |r| (single elements of sums can cancel to ~0).
inline double rel(const torch::Tensor& a, const torch::Tensor& r) { return max_abs(a - r) / (max_abs(r) + 1e-30); }

// The name of the autograd node of conv(x) (x copied, requiring grad), optionally under bf16 autocast: which route ran.
inline std::string node_of(WSConv2d& conv, const torch::Tensor& x, bool autocast = false) {
  train::AutocastScope ac(autocast);
  auto y = conv->forward(x.detach().clone(torch::MemoryFormat::Preserve).requires_grad_(true));
  return y.grad_fn() ? y.grad_fn()->name() : "";
}

}  // namespace nfscale::models::test
