// update_kernels_impl.h - the body of the fused SGD+AGC update kernels (update_kernels.h), written once with GCC
// vector extensions of NFU_W floats and compiled three times (update_kernels_{avx512,avx2,generic}.cpp) under
// different target ISAs. Include only from those files, after defining NFU_W, NFU_NS and NFU_ISA_NAME.
// NOLINT(build/header_guard): intentionally re-included per ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/optim/update_kernels.h"

namespace nfscale::optim::update_kernels::NFU_NS {
namespace {

constexpr int W = NFU_W;
typedef float vf __attribute__((vector_size(W * 4)));
typedef double vd __attribute__((vector_size(W * 8)));  // W doubles (two registers' worth)

inline vf splat(float v) { return vf{} + v; }
inline vf load(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// (Wider-than-native vectors go by reference or through macros: returning one by value changes the ABI.)
#define NFU_WIDEN(v) __builtin_convertvector((v), vd)
inline double hsum(const vd& v) {
  double s = 0;
  for (int l = 0; l < W; ++l) s += v[l];
  return s;
}

void sq_norms_f32(const float* g, const float* p, int64_t n, double* g_sq, double* p_sq) {
  // Two accumulators per sum (2W double lanes each) so the adds do not wait on one chain.
  vd ga{}, gb{}, pa{}, pb{};
  int64_t k = 0;
  for (; k + 2 * W <= n; k += 2 * W) {
    const vd g0 = NFU_WIDEN(load(g + k)), g1 = NFU_WIDEN(load(g + k + W));
    const vd p0 = NFU_WIDEN(load(p + k)), p1 = NFU_WIDEN(load(p + k + W));
    ga += g0 * g0;
    gb += g1 * g1;
    pa += p0 * p0;
    pb += p1 * p1;
  }
  for (; k + W <= n; k += W) {
    const vd g0 = NFU_WIDEN(load(g + k)), p0 = NFU_WIDEN(load(p + k));
    ga += g0 * g0;
    pa += p0 * p0;
  }
  double gs = hsum(ga + gb), ps = hsum(pa + pb);
  for (; k < n; ++k) {
    gs += double(g[k]) * double(g[k]);
    ps += double(p[k]) * double(p[k]);
  }
  *g_sq = gs;
  *p_sq = ps;
}

template <bool kDecay, bool kMom, bool kNesterov>
void update_t(float* p, float* g, float* buf, int64_t n, const UnitUpdate& u) {
  const vf scale = splat(u.scale), wd = splat(u.weight_decay), m = splat(u.momentum), neg_lr = splat(u.neg_lr);
  int64_t k = 0;
  for (; k + W <= n; k += W) {
    const vf pk = load(p + k);
    vf gk = load(g + k) * scale;
    if (kDecay) gk = gk + wd * pk;
    vf step = gk;
    if (kMom) {
      const vf b = gk + m * load(buf + k);
      store(buf + k, b);
      step = kNesterov ? gk + m * b : b;
    }
    store(p + k, pk + neg_lr * step);
    store(g + k, (kMom && !kNesterov) ? gk : step);
  }
  for (; k < n; ++k) {
    float gk = g[k] * u.scale;
    if (kDecay) gk = gk + u.weight_decay * p[k];
    float step = gk;
    if (kMom) {
      const float b = gk + u.momentum * buf[k];
      buf[k] = b;
      step = kNesterov ? gk + u.momentum * b : b;
    }
    p[k] = p[k] + u.neg_lr * step;
    g[k] = (kMom && !kNesterov) ? gk : step;
  }
}

void update_f32(float* p, float* g, float* buf, int64_t n, const UnitUpdate& u) {
  const int sel = (u.decay ? 4 : 0) | (u.mom ? 2 : 0) | (u.nesterov ? 1 : 0);
  switch (sel) {
    case 0: return update_t<false, false, false>(p, g, buf, n, u);
    case 1: return update_t<false, false, true>(p, g, buf, n, u);
    case 2: return update_t<false, true, false>(p, g, buf, n, u);
    case 3: return update_t<false, true, true>(p, g, buf, n, u);
    case 4: return update_t<true, false, false>(p, g, buf, n, u);
    case 5: return update_t<true, false, true>(p, g, buf, n, u);
    case 6: return update_t<true, true, false>(p, g, buf, n, u);
    default: return update_t<true, true, true>(p, g, buf, n, u);
  }
}

}  // namespace

const KernelTable& table() {
  static const KernelTable t{NFU_ISA_NAME, &sq_norms_f32, &update_f32};
  return t;
}

#undef NFU_WIDEN

}  // namespace nfscale::optim::update_kernels::NFU_NS
