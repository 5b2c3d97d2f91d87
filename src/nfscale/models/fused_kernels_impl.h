// fused_kernels_impl.h - the body of the fused element-wise kernels, written once with GCC vector extensions of
// NFK_W floats and compiled three times (fused_kernels_{avx512,avx2,generic}.cpp) under different target ISAs.
// Include only from those files, after defining NFK_W and NFK_NS. Math in fp32; bf16 <-> fp32 by bit operations.
// NOLINT(build/header_guard): intentionally re-included per ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/models/fused_kernels.h"

namespace nfscale::models::fused::NFK_NS {
namespace {

constexpr int W = NFK_W;
typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef uint32_t vu __attribute__((vector_size(W * 4)));
typedef uint16_t vh __attribute__((vector_size(W * 2)));

inline vf splat(float v) { return vf{} + v; }

inline vf load(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf load(const bf16_t* p) {
  vh h; std::memcpy(&h, p, sizeof h);
  vu u = __builtin_convertvector(h, vu) << 16;
  vf f; std::memcpy(&f, &u, sizeof f); return f;
}
inline void store(bf16_t* p, vf f) {
  vu u; std::memcpy(&u, &f, sizeof u);
  vu r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;           // round to nearest even (as c10::BFloat16)
  r = (f != f) ? vu{} + 0x7FC0u : r;                          // NaN stays a quiet NaN
  vh h = __builtin_convertvector(r, vh);
  std::memcpy(p, &h, sizeof h);
}

// exp(x) for x in fp32 (Cephes polynomial, ~1 ulp); inputs clamped to [-87.3, 88.3] (no inf/denormal results).
inline vf vexp(vf x) {
  x = x < -87.3f ? splat(-87.3f) : x;
  x = x > 88.3f ? splat(88.3f) : x;
  const vf magic = splat(12582912.0f);                         // 1.5 * 2^23: round to nearest integer
  vf t = x * 1.44269504088896341f + magic;
  vf n = t - magic;
  vf r = x - n * 0.693359375f + n * 2.12194440e-4f;           // x - n ln2 in two parts
  vf y = splat(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  vi ti, yi; std::memcpy(&ti, &t, sizeof ti); std::memcpy(&yi, &y, sizeof yi);
  const int32_t magic_bits = 0x4B400000;
  yi += (ti - magic_bits) << 23;                               // y * 2^n
  vf out; std::memcpy(&out, &yi, sizeof out); return out;
}

constexpr float kK2 = 2.0f * 0.7978845608028654f;  // 2 * sqrt(2/pi)
constexpr float kC = 0.044715f;

// gelu_tanh(x) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)  (0.5 (1 + tanh u) = sigmoid(2u)).
// sigmoid(2u); exactly 0 once exp(-2u) would overflow (x < ~-9.9), as tanh's -1 gives in the fp64 formula.
inline vf sig2u(vf x) {
  const vf a = -kK2 * (x + kC * x * x * x);
  const vf s = 1.0f / (1.0f + vexp(a));
  return a > 88.0f ? splat(0.0f) : s;
}
inline vf gelu(vf x, float scale) {
  vf s = sig2u(x);
  return (scale * x) * s;
}
inline vf gelu_grad(vf g, vf x, float scale) {
  vf s = sig2u(x);
  vf d = s + x * s * (1.0f - s) * (kK2 * (1.0f + 3.0f * kC * x * x));
  return (scale * g) * d;
}

// Over [0, n) in vectors of W; the tail goes through zero-padded scratch buffers.
template <typename T>
void gelu_fwd(const T* x, T* y, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + W <= n; i += W) store(y + i, gelu(load(x + i), scale));
  if (i < n) {
    T xb[W] = {}, yb[W];
    std::memcpy(xb, x + i, sizeof(T) * size_t(n - i));
    store(yb, gelu(load(xb), scale));
    std::memcpy(y + i, yb, sizeof(T) * size_t(n - i));
  }
}

template <typename T>
void gelu_bwd(const T* g, const T* x, T* gx, int64_t n, float scale) {
  int64_t i = 0;
  for (; i + W <= n; i += W) store(gx + i, gelu_grad(load(g + i), load(x + i), scale));
  if (i < n) {
    T gb[W] = {}, xb[W] = {}, ob[W];
    std::memcpy(gb, g + i, sizeof(T) * size_t(n - i));
    std::memcpy(xb, x + i, sizeof(T) * size_t(n - i));
    store(ob, gelu_grad(load(gb), load(xb), scale));
    std::memcpy(gx + i, ob, sizeof(T) * size_t(n - i));
  }
}

// Reads n <= W values of T (zero-padded) / writes n values.
template <typename T> inline vf load_n(const T* p, int64_t n) {
  if (n == W) return load(p);
  T b[W] = {}; std::memcpy(b, p, sizeof(T) * size_t(n)); return load(b);
}
template <typename T> inline void store_n(T* p, vf v, int64_t n) {
  if (n == W) { store(p, v); return; }
  T b[W]; store(b, v); std::memcpy(p, b, sizeof(T) * size_t(n));
}
inline float hsum(vf v) { float s = 0.0f; for (int k = 0; k < W; ++k) s += v[k]; return s; }

template <typename T>
void tail_fwd(const T* sc, const T* br, T* out, const float* coef, TailShape s) {
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t o = r * s.cols;
    for (int64_t c = 0; c < s.cols; c += W) {
      const int64_t n = s.cols - c < W ? s.cols - c : W;
      const vf k = s.coef_per_col ? load_n(coef + c, n) : splat(coef[r]);
      store_n(out + o + c, load_n(sc + o + c, n) + k * load_n(br + o + c, n), n);
    }
  }
}

template <typename T>
void tail_bwd(const T* g, const T* br, T* dbr, const float* coef, float* dot, TailShape s) {
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t o = r * s.cols;
    vf acc = splat(0.0f);
    for (int64_t c = 0; c < s.cols; c += W) {
      const int64_t n = s.cols - c < W ? s.cols - c : W;
      const vf gv = load_n(g + o + c, n), bv = load_n(br + o + c, n);
      const vf k = s.coef_per_col ? load_n(coef + c, n) : splat(coef[r]);
      store_n(dbr + o + c, k * gv, n);
      if (s.coef_per_col) {
        store_n(dot + c, load_n(dot + c, n) + gv * bv, n);
      } else {
        acc += gv * bv;
      }
    }
    if (!s.coef_per_col) dot[r] += hsum(acc);
  }
}

// ---- weight standardisation rows: fp32 weights, statistics and sums in double (W doubles per vd) ----
typedef double vd __attribute__((vector_size(W * 8)));
// (vd is wider than a register: it goes by reference or through this macro, as returning one changes the ABI)
#define NFK_WIDEN(v) __builtin_convertvector((v), vd)
inline double hsum_d(const vd& v) { double s = 0.0; for (int k = 0; k < W; ++k) s += v[k]; return s; }
inline double scalar_of(float v) { return double(v); }
inline double scalar_of(bf16_t v) { uint32_t u = uint32_t(v) << 16; float f; std::memcpy(&f, &u, 4); return f; }

void ws_fwd_row(const float* w, float* out_f32, bf16_t* out_bf16, int64_t K, double gain, double eps, double* st) {
  vd a0{}, a1{};
  int64_t k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    a0 += NFK_WIDEN(load(w + k));
    a1 += NFK_WIDEN(load(w + k + W));
  }
  for (; k + W <= K; k += W) a0 += NFK_WIDEN(load(w + k));
  double sum = hsum_d(a0 + a1);
  for (; k < K; ++k) sum += double(w[k]);
  const double mean = sum / double(K);
  const vd mv = vd{} + mean;
  vd s0{}, s1{};
  k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    const vd u0 = NFK_WIDEN(load(w + k)) - mv, u1 = NFK_WIDEN(load(w + k + W)) - mv;
    s0 += u0 * u0;
    s1 += u1 * u1;
  }
  for (; k + W <= K; k += W) {
    const vd u0 = NFK_WIDEN(load(w + k)) - mv;
    s0 += u0 * u0;
  }
  double S = hsum_d(s0 + s1);
  for (; k < K; ++k) S += (double(w[k]) - mean) * (double(w[k]) - mean);
  const double r = 1.0 / __builtin_sqrt(S < eps ? eps : S);  // (no <cmath> under the target pragma)
  const vd cv = vd{} + gain * r;
  for (k = 0; k < K; k += W) {
    const int64_t n = K - k < W ? K - k : W;
    const vf y = __builtin_convertvector(cv * (NFK_WIDEN(load_n(w + k, n)) - mv), vf);  // rounded to fp32 once
    if (out_f32) store_n(out_f32 + k, y, n);
    else store_n(out_bf16 + k, y, n);  // and to bf16 once more (nearest even)
  }
  st[0] = mean; st[1] = r; st[2] = S >= eps ? 1.0 : 0.0;
}

template <typename G>
double ws_bwd_row(const G* g, const float* w, float* dw, int64_t K, double gain, const double* st) {
  const double mean = st[0], r = st[1];
  const vd mv = vd{} + mean;
  vd g0{}, g1{}, q0{}, q1{};  // sums of g and of g u
  int64_t k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    const vd ga = NFK_WIDEN(load(g + k)), gb = NFK_WIDEN(load(g + k + W));
    g0 += ga;
    g1 += gb;
    q0 += ga * (NFK_WIDEN(load(w + k)) - mv);
    q1 += gb * (NFK_WIDEN(load(w + k + W)) - mv);
  }
  for (; k + W <= K; k += W) {
    const vd ga = NFK_WIDEN(load(g + k));
    g0 += ga;
    q0 += ga * (NFK_WIDEN(load(w + k)) - mv);
  }
  double sg = hsum_d(g0 + g1), sgu = hsum_d(q0 + q1);
  for (; k < K; ++k) {
    sg += scalar_of(g[k]);
    sgu += scalar_of(g[k]) * (double(w[k]) - mean);
  }
  const vd gm = vd{} + sg / double(K), av = vd{} + gain * r, bv = vd{} + st[2] * gain * r * r * r * sgu;
  for (k = 0; k < K; k += W) {
    const int64_t n = K - k < W ? K - k : W;
    const vd t = av * (NFK_WIDEN(load_n(g + k, n)) - gm) - bv * (NFK_WIDEN(load_n(w + k, n)) - mv);
    store_n(dw + k, __builtin_convertvector(t, vf), n);
  }
  return r * sgu;
}
#undef NFK_WIDEN

}  // namespace

const KernelTable& table() {
  static const KernelTable t = {
      NFK_ISA_NAME,       &gelu_fwd<float>,  &gelu_fwd<bf16_t>,  &gelu_bwd<float>, &gelu_bwd<bf16_t>,
      &tail_fwd<float>,   &tail_fwd<bf16_t>, &tail_bwd<float>,   &tail_bwd<bf16_t>,
      &ws_fwd_row,        &ws_bwd_row<float>, &ws_bwd_row<bf16_t>,
  };
  return t;
}

}  // namespace nfscale::models::fused::NFK_NS
