// dense_conv3x3_kernels_impl.h - the body of the dense small-channel 3x3 convolution kernels (dense_conv3x3_kernels.h),
// written once with GCC vector extensions of D3K_W floats and compiled three times (dense_conv3x3_kernels_{avx512,avx2,
// generic}.cpp). Include only from those files, after defining D3K_W, D3K_NS and D3K_ISA_NAME.
// Layout: one image's map [H, W, C] becomes C planes of (H + 2) x P floats, P = W + 2, zero borders, plus slack; map
// pixel (h, w) sits at flat index (h + 1) P + w + 1. An output vector covers W consecutive flat indices from
// q0 = P + 1 on (the pixels of a row and the two border columns between rows, which are computed and dropped), so tap
// (kh, kw) of every lane is the load at offset (kh - 1) P + kw - 1. Forward / input gradient: NQ vectors x OB output
// channels of accumulators per block (each loaded vector feeds OB FMAs, each broadcast weight NQ). Weight gradient:
// WB output channels x 9 taps of vector partials per input channel, summed over an image and added to per-(o, c, tap)
// vector partials, reduced once at the end.
// NOLINT(build/header_guard): intentionally re-included per ISA.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nfscale/models/dense_conv3x3_kernels.h"

namespace nfscale::models::dense3x3::D3K_NS {
namespace {

constexpr int W = D3K_W;
typedef float vf __attribute__((vector_size(W * 4)));

// v - (+0) is v in every lane, -0 included, so this is a bare broadcast (vf{} + v is not: an extra add per use)
inline vf splat(float v) { return v - vf{}; }
inline vf load(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// A load the compiler must keep in a register (GCC otherwise folds it into every FMA that uses it: one load per use).
inline vf load_reg(const float* p) {
  vf v = load(p);
  __asm__("" : "+v"(v));
  return v;
}
inline float hsum(vf v) {
  float s = 0.0f;
  for (int i = 0; i < W; ++i) s += v[i];
  return s;
}

// Register budget: 32 vector registers with AVX-512, 16 otherwise.
constexpr int kOB = W == 16 ? 8 : 4;          // output channels per forward block
constexpr int kAccRegs = W == 16 ? 24 : 8;    // accumulators per forward block (NQ * OB)
constexpr int kWB = W == 16 ? 2 : 1;          // output channels per weight-gradient block (x 9 taps)
template <int OB>
constexpr int nq_for() {  // vectors per forward block for OB output channels
  return std::max(1, std::min(6, kAccRegs / OB));
}

// The planar geometry of one image (see the top of the file).
struct Planes {
  int64_t H, Wd, P, PL, q0, nvec, span;
  int64_t d[kTaps];  // flat offset of tap t
  Planes(int64_t h, int64_t w) : H(h), Wd(w), P(w + 2), q0(w + 3) {
    const int64_t L = (H - 1) * P + Wd;  // flat indices from q0 to the last map pixel
    nvec = (L + W - 1) / W;
    span = nvec * W;
    PL = ((H + 2) * P + W + 15) / 16 * 16;  // the last vector's taps read up to W - 1 floats past the bottom border
    for (int t = 0; t < kTaps; ++t) d[t] = (t / 3 - 1) * P + (t % 3 - 1);
  }
};

// One image's map m [H, W, n] into planes pl [n][PL] (interiors only: the borders stay as they are, zero), and planar
// results out [n][span] (map pixel (h, w) at h P + w) back into a map m [H, W, n]. With n a compile-time 4, 8 or 16 GCC
// vectorises the interleaved accesses with permutes (~4x faster than the scalar loops for 8 channels).
template <int N>
void to_planes_n(const float* m, const Planes& g, float* pl) {
  for (int64_t h = 0; h < g.H; ++h) {
    const float* src = m + h * g.Wd * N;
    float* dst = pl + (h + 1) * g.P + 1;
    for (int64_t w = 0; w < g.Wd; ++w)
#pragma GCC unroll 16
      for (int c = 0; c < N; ++c) dst[c * g.PL + w] = src[w * N + c];
  }
}
template <int N>
void from_planar_n(const float* out, const Planes& g, float* m) {
  for (int64_t h = 0; h < g.H; ++h) {
    const float* src = out + h * g.P;
    float* dst = m + h * g.Wd * N;
    for (int64_t w = 0; w < g.Wd; ++w)
#pragma GCC unroll 16
      for (int c = 0; c < N; ++c) dst[w * N + c] = src[c * g.span + w];
  }
}

void to_planes(const float* m, int64_t n, const Planes& g, float* pl) {
  switch (n) {
    case 4: return to_planes_n<4>(m, g, pl);
    case 8: return to_planes_n<8>(m, g, pl);
    case 16: return to_planes_n<16>(m, g, pl);
    default:  // plane by plane: the stores run in order
      for (int64_t c = 0; c < n; ++c)
        for (int64_t h = 0; h < g.H; ++h) {
          const float* src = m + h * g.Wd * n + c;
          float* dst = pl + c * g.PL + (h + 1) * g.P + 1;
          for (int64_t w = 0; w < g.Wd; ++w) dst[w] = src[w * n];
        }
  }
}

void from_planar(const float* out, int64_t n, const Planes& g, float* m) {
  switch (n) {
    case 4: return from_planar_n<4>(out, g, m);
    case 8: return from_planar_n<8>(out, g, m);
    case 16: return from_planar_n<16>(out, g, m);
    default:
      for (int64_t h = 0; h < g.H; ++h)
        for (int64_t w = 0; w < g.Wd; ++w) {
          const float* src = out + h * g.P + w;
          float* dst = m + (h * g.Wd + w) * n;
          for (int64_t o = 0; o < n; ++o) dst[o] = src[o * g.span];
        }
  }
}

// out[o0 + o][j + n W ...] for o < OB, n < NQ: bias + sum_{c < C, t} pl[c][q0 + j + n W + d[t] ...] * wp[(c 9 + t) O + o0 + o]
template <int OB, int NQ>
inline void conv_block(const float* pl, int64_t C, const float* wp, int64_t O, int64_t o0, const float* bias,
                       const Planes& g, float* out, int64_t j) {
  vf acc[NQ][OB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
    const vf b = splat(bias ? bias[o0 + o] : 0.0f);
#pragma GCC unroll 6
    for (int n = 0; n < NQ; ++n) acc[n][o] = b;
  }
  int64_t d[kTaps];
  for (int t = 0; t < kTaps; ++t) d[t] = g.d[t];
  for (int64_t c = 0; c < C; ++c) {
    const float* src = pl + c * g.PL + g.q0 + j;
    const float* wc = wp + c * kTaps * O + o0;
#pragma GCC unroll 9
    for (int t = 0; t < kTaps; ++t) {
      vf v[NQ];
#pragma GCC unroll 6
      for (int n = 0; n < NQ; ++n) v[n] = load_reg(src + d[t] + n * W);
#pragma GCC unroll 8
      for (int o = 0; o < OB; ++o) {
        const vf wv = splat(wc[t * O + o]);
#pragma GCC unroll 6
        for (int n = 0; n < NQ; ++n) acc[n][o] += v[n] * wv;
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 6
    for (int n = 0; n < NQ; ++n) store(out + (o0 + o) * g.span + j + n * W, acc[n][o]);
}

// Every vector of output channels [o0, o0 + OB).
template <int OB>
void conv_channels(const float* pl, int64_t C, const float* wp, int64_t O, int64_t o0, const float* bias,
                   const Planes& g, float* out) {
  constexpr int NQ = nq_for<OB>();
  int64_t v = 0;
  for (; v + NQ <= g.nvec; v += NQ) conv_block<OB, NQ>(pl, C, wp, O, o0, bias, g, out, v * W);
  if (NQ > 2 && v + 2 <= g.nvec) {
    conv_block<OB, (NQ > 2 ? 2 : 1)>(pl, C, wp, O, o0, bias, g, out, v * W);
    v += NQ > 2 ? 2 : 1;
  }
  for (; v < g.nvec; ++v) conv_block<OB, 1>(pl, C, wp, O, o0, bias, g, out, v * W);
}

// out [O][span] = the convolution of planes pl [C][PL] with wp [C, 9, O] (+ bias): output channels in blocks of kOB,
// then 4 / 2 / 1.
void conv_planar(const float* pl, int64_t C, const float* wp, int64_t O, const float* bias, const Planes& g,
                 float* out) {
  int64_t o0 = 0;
  for (; o0 + kOB <= O; o0 += kOB) conv_channels<kOB>(pl, C, wp, O, o0, bias, g, out);
  if (kOB > 4 && o0 + 4 <= O) {
    conv_channels<4>(pl, C, wp, O, o0, bias, g, out);
    o0 += 4;
  }
  if (o0 + 2 <= O) {
    conv_channels<2>(pl, C, wp, O, o0, bias, g, out);
    o0 += 2;
  }
  if (o0 < O) conv_channels<1>(pl, C, wp, O, o0, bias, g, out);
}

// part[((o0 + k) C + c) 9 + t] += sum over n images' vectors of x-plane c at tap t times dy-plane o0 + k, k < WB.
// Image i's planes: gp + i * gimg (dy, [O][PL]) and xp + i * ximg (x, [C][PL]). part holds one vector (W floats) per
// (o, c, tap): with several images per call the accumulators stay in registers longer (an 8x8 map is only 5 vectors).
template <int WB>
inline void wgrad_block(const float* gp, int64_t gimg, const float* xp, int64_t ximg, int64_t n, int64_t C, int64_t o0,
                        int64_t c, const Planes& g, float* part) {
  vf acc[WB][kTaps];
#pragma GCC unroll 2
  for (int k = 0; k < WB; ++k)
#pragma GCC unroll 9
    for (int t = 0; t < kTaps; ++t) acc[k][t] = splat(0.0f);
  int64_t d[kTaps];
  for (int t = 0; t < kTaps; ++t) d[t] = g.d[t];
  for (int64_t i = 0; i < n; ++i) {
    const float* xs = xp + i * ximg + c * g.PL + g.q0;
    const float* gs = gp + i * gimg + o0 * g.PL + g.q0;
    for (int64_t j = 0; j < g.span; j += W) {
      vf gv[WB];
#pragma GCC unroll 2
      for (int k = 0; k < WB; ++k) gv[k] = load(gs + k * g.PL + j);  // zero at border columns and past the map
#pragma GCC unroll 9
      for (int t = 0; t < kTaps; ++t) {
        const vf xv = load_reg(xs + j + d[t]);
#pragma GCC unroll 2
        for (int k = 0; k < WB; ++k) acc[k][t] += xv * gv[k];
      }
    }
  }
#pragma GCC unroll 2
  for (int k = 0; k < WB; ++k)
#pragma GCC unroll 9
    for (int t = 0; t < kTaps; ++t) {
      float* p = part + (((o0 + k) * C + c) * kTaps + t) * W;
      store(p, load(p) + acc[k][t]);
    }
}

void fwd(const float* x, const float* wp, const float* bias, float* y, const Shape& s, int64_t b0, int64_t b1) {
  const Planes g(s.H, s.W);
  const int64_t HW = s.H * s.W;
  std::vector<float> buf(s.C * g.PL + s.O * g.span, 0.0f);  // planes [C][PL] (zero borders), then out [O][span]
  float* pl = buf.data();
  float* out = pl + s.C * g.PL;
  for (int64_t b = b0; b < b1; ++b) {
    to_planes(x + b * HW * s.C, s.C, g, pl);
    conv_planar(pl, s.C, wp, s.O, bias, g, out);
    from_planar(out, s.O, g, y + b * HW * s.O);
  }
}

// Images in groups of up to kGroupBytes of planes: every group's planes are built (and its input gradient computed)
// first, then its weight-gradient blocks run over all of the group's images.
constexpr int64_t kGroupBytes = 256 * 1024;
constexpr int64_t kMaxGroup = 8;

void bwd(const float* dy, const float* x, const float* wt, float* dx, float* dw, float* db, const Shape& s, int64_t b0,
         int64_t b1) {
  const Planes g(s.H, s.W);
  const int64_t HW = s.H * s.W, C = s.C, O = s.O, gimg = O * g.PL, ximg = C * g.PL;
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(kMaxGroup, kGroupBytes / (4 * (gimg + ximg))));
  // dy planes [group][O][PL] and x planes [group][C][PL] (zero borders), then the input gradient's planar result
  // [C][span]
  std::vector<float> buf(group * (gimg + ximg) + C * g.span, 0.0f);
  float* gp = buf.data();
  float* xp = gp + group * gimg;
  float* out = xp + group * ximg;
  // vector partials (W floats each): [O][C][9] of the weight gradient, then [O] of the bias gradient
  std::vector<float> part((O * C * kTaps + O) * W, 0.0f);
  float* bpart = part.data() + O * C * kTaps * W;
  for (int64_t b = b0; b < b1; b += group) {
    const int64_t n = std::min(group, b1 - b);
    for (int64_t i = 0; i < n; ++i) {
      to_planes(dy + (b + i) * HW * O, O, g, gp + i * gimg);
      to_planes(x + (b + i) * HW * C, C, g, xp + i * ximg);
      if (dx) {
        conv_planar(gp + i * gimg, O, wt, C, nullptr, g, out);
        from_planar(out, C, g, dx + (b + i) * HW * C);
      }
    }
    int64_t o0 = 0;
    for (; o0 + kWB <= O; o0 += kWB)
      for (int64_t c = 0; c < C; ++c) wgrad_block<kWB>(gp, gimg, xp, ximg, n, C, o0, c, g, part.data());
    for (; o0 < O; ++o0)
      for (int64_t c = 0; c < C; ++c) wgrad_block<1>(gp, gimg, xp, ximg, n, C, o0, c, g, part.data());
    for (int64_t o = 0; o < O; ++o) {
      vf acc = load(bpart + o * W);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < g.span; j += W) acc += load(gp + i * gimg + o * g.PL + g.q0 + j);
      store(bpart + o * W, acc);
    }
  }
  for (int64_t i = 0; i < O * C * kTaps; ++i) dw[i] = hsum(load(part.data() + i * W));
  for (int64_t o = 0; o < O; ++o) db[o] = hsum(load(bpart + o * W));
}

}  // namespace

const Table& table() {
  static const Table t = {D3K_ISA_NAME, &fwd, &bwd};
  return t;
}

}  // namespace nfscale::models::dense3x3::D3K_NS
