// optim_test_util.h - helpers shared by the optimiser tests: double-precision random tensors, ParamSpec lists,
// and an independent loop-based AGC reference (no LibTorch reductions) to check the library against.
#pragma once
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "nfscale/optim/optimizer.h"
#include "nfscale/optim/param_spec.h"

namespace nfscale::optim::test {

inline torch::Tensor randn_double(std::vector<int64_t> shape, uint64_t seed, double scale = 1.0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn(shape, gen, torch::dtype(torch::kDouble)).mul_(scale);
}

inline ParamSpec spec(const std::string& name, torch::Tensor value, bool wd, bool agc) {
  return ParamSpec{name, value.detach().clone().set_requires_grad(true), wd, agc};
}

// Hand AGC on a copy of `g`: units are the rows of dim 0 unless at most one dim exceeds 1 (then the whole tensor).
inline torch::Tensor agc_reference(const torch::Tensor& g_in, const torch::Tensor& w_in, double clip = 0.01,
                                   double eps = 1e-3, double floor = 1e-6, int64_t* clipped = nullptr) {
  torch::Tensor g = g_in.detach().to(torch::kDouble).contiguous().clone();
  torch::Tensor w = w_in.detach().to(torch::kDouble).contiguous();
  int64_t big = 0;
  for (int64_t s : w.sizes()) big += s > 1;
  const int64_t units = big <= 1 ? 1 : w.size(0);
  const int64_t per = w.numel() / units;
  double* gp = g.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  for (int64_t u = 0; u < units; ++u) {
    double ws = 0, gs = 0;
    for (int64_t k = 0; k < per; ++k) {
      ws += wp[u * per + k] * wp[u * per + k];
      gs += gp[u * per + k] * gp[u * per + k];
    }
    const double max_norm = clip * std::max(std::sqrt(ws), eps);
    const double gn = std::sqrt(gs);
    if (gn > max_norm) {
      for (int64_t k = 0; k < per; ++k) gp[u * per + k] *= max_norm / std::max(gn, floor);
      if (clipped) ++*clipped;
    }
  }
  return g;
}

// Bitwise equality (memcmp of the contiguous data), stricter than torch::equal (which treats -0.0 == 0.0).
inline bool bit_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const torch::Tensor ac = a.detach().contiguous(), bc = b.detach().contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.numel() * ac.element_size()) == 0;
}

// Optimiser state through a serialised archive (what a checkpoint holds), and back.
inline std::string save_to_string(const Optimizer& o) {
  torch::serialize::OutputArchive ar;
  o.save(ar);
  std::ostringstream os;
  ar.save_to(os);
  return os.str();
}
inline void load_from_string(Optimizer& o, const std::string& bytes) {
  torch::serialize::InputArchive ar;
  std::istringstream is(bytes);
  ar.load_from(is);
  o.load(ar);
}

}  // namespace nfscale::optim::test
