// fused_update.cpp - see fused_update.h. Parallel over units (rows) with at::parallel_for; each unit is read once
// for its two norms and once more (from cache) for the update. fp32 runs the vector kernels of update_kernels.h;
// fp64 (tests, gradient checks) runs the scalar loops below.
#include "nfscale/optim/fused_update.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <type_traits>
#include <vector>

#include "nfscale/optim/update_kernels.h"
#include "nfscale/util/cpu_features.h"

namespace nfscale::optim {

namespace update_kernels {
const KernelTable& update_kernel_table() {
  return table_for_kernel_isa(&kernels_generic, &kernels_avx2, &kernels_avx512);
}
}  // namespace update_kernels

bool fused_update_supported(const torch::Tensor& p, const torch::Tensor& g, const torch::Tensor& buf,
                            double momentum) {
  const auto t = p.scalar_type();
  if (t != at::kFloat && t != at::kDouble) return false;
  if (!p.is_contiguous() || !g.is_contiguous() || g.scalar_type() != t || g.sizes() != p.sizes()) return false;
  if (p.device().type() != at::kCPU || g.device().type() != at::kCPU) return false;
  if (momentum > 0 && (!buf.defined() || !buf.is_contiguous() || buf.scalar_type() != t || buf.sizes() != p.sizes()))
    return false;
  return true;
}

namespace {

constexpr int kLanes = 8;  // independent accumulators per sum (one AVX-512 register of doubles)

template <typename T>
FusedUpdateResult update(T* p, T* g, T* buf, int64_t units, int64_t len, const FusedUpdateArgs& a,
                         const update_kernels::KernelTable& kt) {
  // Scalars rounded to T as ATen's add_/mul_ do with a Scalar alpha.
  const T wd = T(a.weight_decay), m = T(a.momentum), neg_lr = T(-a.lr);
  const T clip = T(a.agc_options.clip), eps = T(a.agc_options.eps), floor = T(a.agc_options.grad_floor);
  const bool decay = a.weight_decay != 0, mom = a.momentum > 0;
  // Per-unit squared gradient norms, summed in unit order afterwards: the total's bits do not depend on how the
  // units were split over threads (or in which order the threads finished).
  std::vector<double> unit_sq(size_t(units), 0.0);
  std::atomic<int64_t> clipped_units{0};
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, len));
  at::parallel_for(0, units, grain, [&](int64_t u0, int64_t u1) {
    int64_t part_clipped = 0;
    for (int64_t u = u0; u < u1; ++u) {
      T* pu = p + u * len;
      T* gu = g + u * len;
      T* bu = mom ? buf + u * len : nullptr;
      double gs = 0, ws = 0;
      if constexpr (std::is_same_v<T, float>) {
        kt.sq_norms_f32(gu, pu, len, &gs, &ws);
      } else {
        // Sums of squares in kLanes independent accumulators: one serial chain is bound by the add latency.
        double gl[kLanes] = {}, wl[kLanes] = {};
        int64_t k = 0;
        for (; k + kLanes <= len; k += kLanes)
          for (int l = 0; l < kLanes; ++l) {
            gl[l] += double(gu[k + l]) * double(gu[k + l]);
            wl[l] += double(pu[k + l]) * double(pu[k + l]);
          }
        for (; k < len; ++k) {
          gs += double(gu[k]) * double(gu[k]);
          ws += double(pu[k]) * double(pu[k]);
        }
        for (int l = 0; l < kLanes; ++l) gs += gl[l], ws += wl[l];
      }
      unit_sq[size_t(u)] = gs;
      T scale = T(1);
      bool clipped = false;
      if (a.agc) {
        const T gn = T(std::sqrt(gs)), wn = T(std::sqrt(ws));
        const T max_norm = std::max(wn, eps) * clip;
        if (gn > max_norm) {
          scale = max_norm / std::max(gn, floor);
          clipped = true;
          ++part_clipped;
        }
      }
      if constexpr (std::is_same_v<T, float>) {
        update_kernels::UnitUpdate uu;
        uu.scale = clipped ? scale : 1.0f;
        uu.weight_decay = wd;
        uu.momentum = m;
        uu.neg_lr = neg_lr;
        uu.decay = decay;
        uu.mom = mom;
        uu.nesterov = a.nesterov;
        kt.update_f32(pu, gu, bu, len, uu);
      } else {
        for (int64_t k = 0; k < len; ++k) {
          T gk = clipped ? gu[k] * scale : gu[k];
          if (decay) gk = gk + wd * pu[k];
          T step = gk;
          if (mom) {
            const T b = gk + m * bu[k];
            bu[k] = b;
            step = a.nesterov ? gk + m * b : b;
          }
          pu[k] = pu[k] + neg_lr * step;
          gu[k] = (mom && !a.nesterov) ? gk : step;  // as the ATen path leaves it
        }
      }
    }
    clipped_units += part_clipped;
  });
  FusedUpdateResult total;
  for (const double sq : unit_sq) total.grad_sq_norm += sq;
  total.units_clipped = clipped_units.load();
  return total;
}

}  // namespace

FusedUpdateResult fused_update_(torch::Tensor& p, torch::Tensor& g, torch::Tensor& buf, const FusedUpdateArgs& a) {
  TORCH_CHECK(fused_update_supported(p, g, buf, a.momentum), "fused_update_: unsupported tensors");
  const int64_t units = agc_unit_count(p);
  const int64_t len = units > 0 ? p.numel() / units : 0;
  if (p.numel() == 0) return {};
  if (p.scalar_type() == at::kDouble)
    return update<double>(p.data_ptr<double>(), g.data_ptr<double>(), a.momentum > 0 ? buf.data_ptr<double>() : nullptr,
                          units, len, a, update_kernels::update_kernel_table());
  return update<float>(p.data_ptr<float>(), g.data_ptr<float>(), a.momentum > 0 ? buf.data_ptr<float>() : nullptr,
                       units, len, a, update_kernels::update_kernel_table());
}

}  // namespace nfscale::optim
