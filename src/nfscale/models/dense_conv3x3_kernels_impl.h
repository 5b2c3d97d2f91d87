// dense_conv3x3_kernels_impl.h - the body of the dense small-channel 3x3 convolution kernels (dense_conv3x3_kernels.h),
// written once with GCC vector extensions of D3K_W floats and compiled three times (dense_conv3x3_kernels_{avx512,avx2,
// generic}.cpp). Include only from those files, after defining D3K_W, D3K_NS and D3K_ISA_NAME.
//
// Planes. A map [Hm, Wm, n] (one image, channels_last) is stored as n channels x S*S phase planes (S = the stride): map
// pixel (ih, iw) goes to phase ((ih + pt) % S, (iw + pl) % S), row (ih + pt) / S, column (iw + pl) / S of a plane of
// pitch P = Wo + 2 (two zero columns after every output row), zero everywhere no pixel lands. A position is
// row * P + column; the convolution's output (oh, ow) is position oh P + ow, and its tap (kh, kw) reads phase
// (kh % S, kw % S) at position + (kh / S) P + kw / S: every tap of every lane is one unaligned load at a fixed offset,
// and the two junk columns per row are computed and dropped (unless a row is exactly one vector wide: then the vectors
// step by rows and there is no junk).
// Backward. dy goes to one plane per channel at (oh + 2, ow + 2) (two zero rows and columns before). The weight
// gradient is the dot product of dy's positions with each tap's shifted x plane; the input gradient of phase (a, b) is a
// convolution of the dy planes with the taps kh % S = a, kw % S = b at offsets (2 - kh / S) P + 2 - kw / S, scattered
// back to the pixels of that phase (stride 1: one phase, the weight flipped in effect).
// Register blocking: convolutions keep NQ vectors x OB output channels of accumulators (each loaded vector feeds OB FMAs,
// each broadcast weight NQ); the weight gradient WB output channels x 9 taps of one input channel, over a group of
// images, added to per-(o, c, tap) vector partials reduced once at the end.
// NOLINT(build/header_guard): intentionally re-included per ISA.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
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

// ---- W pixels x N channels <-> N channels x W pixels (N a power of two) ------------------------------------------
typedef int vi __attribute__((vector_size(W * 4)));
template <int... I>
constexpr vi lanes(std::integer_sequence<int, I...>, int mul, int add) { return vi{(I * mul + add)...}; }
template <int... I>
constexpr vi zip_lanes(std::integer_sequence<int, I...>, int half) {  // a[h], b[h], a[h + 1], b[h + 1], ...
  return vi{((I / 2) + half + (I % 2) * W)...};
}
constexpr auto kSeq = std::make_integer_sequence<int, W>();
constexpr int bitrev(int c, int n) {  // c's log2(n) low bits reversed
  int r = 0;
  for (int m = 1; m < n; m *= 2, c >>= 1) r = r * 2 + (c & 1);
  return r;
}
// v[i] = floats [i W, (i + 1) W) of a pixel-major run (float N p + c = channel c of pixel p) -> v[bitrev(c)] = channel
// c of the W pixels: log2 N rounds that split each group of vectors into the even and the odd floats of its pairs.
template <int N>
inline void unzip(vf* v) {
  const vi even = lanes(kSeq, 2, 0), odd = lanes(kSeq, 2, 1);
#pragma GCC unroll 5
  for (int g = N; g > 1; g /= 2)
#pragma GCC unroll 16
    for (int g0 = 0; g0 < N; g0 += g) {
      vf t[N];
#pragma GCC unroll 8
      for (int j = 0; j < g / 2; ++j) {
        t[j] = __builtin_shuffle(v[g0 + 2 * j], v[g0 + 2 * j + 1], even);
        t[g / 2 + j] = __builtin_shuffle(v[g0 + 2 * j], v[g0 + 2 * j + 1], odd);
      }
#pragma GCC unroll 16
      for (int j = 0; j < g; ++j) v[g0 + j] = t[j];
    }
}
// The inverse of unzip.
template <int N>
inline void zip(vf* v) {
  const vi lo = zip_lanes(kSeq, 0), hi = zip_lanes(kSeq, W / 2);
#pragma GCC unroll 5
  for (int g = 2; g <= N; g *= 2)
#pragma GCC unroll 16
    for (int g0 = 0; g0 < N; g0 += g) {
      vf t[N];
#pragma GCC unroll 8
      for (int j = 0; j < g / 2; ++j) {
        t[2 * j] = __builtin_shuffle(v[g0 + j], v[g0 + g / 2 + j], lo);
        t[2 * j + 1] = __builtin_shuffle(v[g0 + j], v[g0 + g / 2 + j], hi);
      }
#pragma GCC unroll 16
      for (int j = 0; j < g; ++j) v[g0 + j] = t[j];
    }
}

// Register budget: 32 vector registers with AVX-512, 16 otherwise.
constexpr int kOB = W == 16 ? 8 : 4;        // output channels per convolution block
constexpr int kAccRegs = W == 16 ? 24 : 8;  // accumulators per convolution block (NQ * OB)
constexpr int kWB = W == 16 ? 2 : 1;        // output channels per weight-gradient block (x 9 taps)
template <int OB>
constexpr int nq_for() {  // vectors per convolution block for OB output channels
  return std::max(1, std::min(6, kAccRegs / OB));
}

inline int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
inline int64_t vectors(int64_t n) { return (n + W - 1) / W; }

// ---- planes ------------------------------------------------------------------------------------------------------
// Where a map's pixels go: S x S phases of planes of pitch P and length PL (floats), channel stride S * S * PL.
struct Layout {
  int64_t S, pt, pl, P, PL;
  int64_t cs() const { return S * S * PL; }
};

// The map m [Hm, Wm, n] into planes (only the pixels' positions are written: the rest stays zero). N > 0 fixes n at
// compile time, SS > 0 the stride; with stride 1 and N = 4, 8 or 16 runs of W pixels go through unzip (~3x faster than
// the scalar loop for 8 channels).
template <int N, int SS>
void to_planes_t(const float* m, int64_t n_rt, int64_t Hm, int64_t Wm, const Layout& L, float* pl) {
  const int64_t n = N > 0 ? N : n_rt, S = SS > 0 ? SS : L.S, cs = L.cs();
  for (int64_t ih = 0; ih < Hm; ++ih) {
    const int64_t r = ih + L.pt, a = r % S, i = r / S;
    for (int64_t b = 0; b < S; ++b) {
      const int64_t iw0 = ((b - L.pl) % S + S) % S;  // first column of phase b
      if (iw0 >= Wm) continue;
      const float* src = m + (ih * Wm + iw0) * n;
      float* dst = pl + (a * S + b) * L.PL + i * L.P + (iw0 + L.pl) / S;
      const int64_t cnt = (Wm - iw0 + S - 1) / S;
      int64_t k = 0;
      if constexpr (SS == 1 && N >= 4) {  // W pixels at a time through registers
        for (; k + W <= cnt; k += W) {
          vf v[N];
#pragma GCC unroll 16
          for (int i = 0; i < N; ++i) v[i] = load(src + k * N + i * W);
          unzip<N>(v);
#pragma GCC unroll 16
          for (int c = 0; c < N; ++c) store(dst + c * cs + k, v[bitrev(c, N)]);
        }
      }
      for (; k < cnt; ++k)
#pragma GCC unroll 16
        for (int c = 0; c < n; ++c) dst[c * cs + k] = src[k * S * n + c];
    }
  }
}

void to_planes(const float* m, int64_t n, int64_t Hm, int64_t Wm, const Layout& L, float* pl) {
  const bool s1 = L.S == 1;
  switch (n) {
    case 1: return s1 ? to_planes_t<1, 1>(m, n, Hm, Wm, L, pl) : to_planes_t<1, 2>(m, n, Hm, Wm, L, pl);
    case 4: return s1 ? to_planes_t<4, 1>(m, n, Hm, Wm, L, pl) : to_planes_t<4, 2>(m, n, Hm, Wm, L, pl);
    case 8: return s1 ? to_planes_t<8, 1>(m, n, Hm, Wm, L, pl) : to_planes_t<8, 2>(m, n, Hm, Wm, L, pl);
    case 16: return s1 ? to_planes_t<16, 1>(m, n, Hm, Wm, L, pl) : to_planes_t<16, 2>(m, n, Hm, Wm, L, pl);
    default: return to_planes_t<0, 0>(m, n, Hm, Wm, L, pl);
  }
}

// Planar results out [n][span] (position u - u0; pitch P) of phase (a, b) into the map m [Hm, Wm, n]: pixel
// (S i + a - pt, S j + b - pl) <- position i P + j, for every pixel of that phase. N, SS as in to_planes_t (zip).
template <int N, int SS>
void from_phase_t(const float* out, int64_t n_rt, int64_t span, int64_t u0, const Layout& L, int64_t a, int64_t b,
                  int64_t Hm, int64_t Wm, float* m) {
  const int64_t n = N > 0 ? N : n_rt, S = SS > 0 ? SS : L.S;
  const int64_t iw0 = ((b - L.pl) % S + S) % S;
  if (iw0 >= Wm) return;
  const int64_t cnt = (Wm - iw0 + S - 1) / S, j0 = (iw0 + L.pl) / S;
  for (int64_t ih = ((a - L.pt) % S + S) % S; ih < Hm; ih += S) {
    const float* src = out + ((ih + L.pt) / S) * L.P + j0 - u0;
    float* dst = m + (ih * Wm + iw0) * n;
    int64_t k = 0;
    if constexpr (SS == 1 && N >= 4) {  // W pixels at a time through registers
      for (; k + W <= cnt; k += W) {
        vf v[N];
#pragma GCC unroll 16
        for (int c = 0; c < N; ++c) v[bitrev(c, N)] = load(src + c * span + k);
        zip<N>(v);
#pragma GCC unroll 16
        for (int i = 0; i < N; ++i) store(dst + k * N + i * W, v[i]);
      }
    }
    for (; k < cnt; ++k)
#pragma GCC unroll 16
      for (int c = 0; c < n; ++c) dst[k * S * n + c] = src[c * span + k];
  }
}

void from_phase(const float* out, int64_t n, int64_t span, int64_t u0, const Layout& L, int64_t a, int64_t b,
                int64_t Hm, int64_t Wm, float* m) {
  const bool s1 = L.S == 1;
#define D3K_FROM(NN)                                                                 \
  return s1 ? from_phase_t<NN, 1>(out, n, span, u0, L, a, b, Hm, Wm, m)              \
            : from_phase_t<NN, 2>(out, n, span, u0, L, a, b, Hm, Wm, m)
  switch (n) {
    case 4: D3K_FROM(4);
    case 8: D3K_FROM(8);
    case 16: D3K_FROM(16);
    default: return from_phase_t<0, 0>(out, n, span, u0, L, a, b, Hm, Wm, m);
  }
#undef D3K_FROM
}

// ---- convolution over planes --------------------------------------------------------------------------------------
// A list of NT taps: tap i reads the planes at offset off[i] and weight tap tw[i].
struct Taps {
  int n = 0;
  int tw[kTaps];
  int64_t off[kTaps];
};

// out[(o0 + o) ostride + j + k step ...] for o < OB, k < NQ: bias + sum_{c < C, i < NT} src[c cs + j + k step + off[i]
// ...] * wp[(c 9 + tw[i]) O + o0 + o].
template <int OB, int NQ, int NT>
inline void conv_block(const float* src, int64_t cs, int64_t C, const float* wp, int64_t O, int64_t o0, const Taps& tp,
                       const float* bias, float* out, int64_t ostride, int64_t j, int64_t step) {
  vf acc[NQ][OB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
    const vf b = splat(bias ? bias[o0 + o] : 0.0f);
#pragma GCC unroll 6
    for (int k = 0; k < NQ; ++k) acc[k][o] = b;
  }
  int64_t off[NT], wo[NT];
  for (int i = 0; i < NT; ++i) off[i] = tp.off[i] + j, wo[i] = tp.tw[i] * O + o0;
  for (int64_t c = 0; c < C; ++c) {
    const float* s = src + c * cs;
    const float* wc = wp + c * kTaps * O;
#pragma GCC unroll 9
    for (int i = 0; i < NT; ++i) {
      vf v[NQ];
#pragma GCC unroll 6
      for (int k = 0; k < NQ; ++k) v[k] = load_reg(s + off[i] + k * step);
#pragma GCC unroll 8
      for (int o = 0; o < OB; ++o) {
        const vf wv = splat(wc[wo[i] + o]);
#pragma GCC unroll 6
        for (int k = 0; k < NQ; ++k) acc[k][o] += v[k] * wv;
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 6
    for (int k = 0; k < NQ; ++k) store(out + (o0 + o) * ostride + j + k * step, acc[k][o]);
}

// The vectors of a set of positions: vector v covers [v step, v step + W). step = W: every position from 0 on (a row's
// two junk positions included); step = P: one vector per row, when a row is exactly W pixels (no junk).
struct Run {
  int64_t nvec = 0, step = W;
  int64_t span() const { return nvec ? (nvec - 1) * step + W : 0; }  // positions the vectors reach
  // rows x cols pixels at pitch P
  static Run of(int64_t rows, int64_t cols, int64_t P) {
    Run r;
    if (cols == W) {
      r.nvec = rows;
      r.step = P;
    } else {
      r.nvec = vectors((rows - 1) * P + cols);
    }
    return r;
  }
};

// The vectors of run r for output channels [o0, o0 + OB).
template <int OB, int NT>
void conv_channels(const float* src, int64_t cs, int64_t C, const float* wp, int64_t O, int64_t o0, const Taps& tp,
                   const float* bias, float* out, int64_t ostride, const Run& r) {
  constexpr int NQ = nq_for<OB>();
  int64_t v = 0;
  for (; v + NQ <= r.nvec; v += NQ)
    conv_block<OB, NQ, NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, v * r.step, r.step);
  if (NQ > 2 && v + 2 <= r.nvec) {
    conv_block<OB, (NQ > 2 ? 2 : 1), NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, v * r.step, r.step);
    v += NQ > 2 ? 2 : 1;
  }
  for (; v < r.nvec; ++v) conv_block<OB, 1, NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, v * r.step, r.step);
}

// out [O][ostride], the positions of run r = the convolution of the planes src (C channels, stride cs) with the taps tp
// and the weights wp [C, 9, O] (+ bias): output channels in blocks of kOB, then 4 / 2 / 1.
template <int NT>
void conv_taps(const float* src, int64_t cs, int64_t C, const float* wp, int64_t O, const Taps& tp, const float* bias,
               float* out, int64_t ostride, const Run& r) {
  int64_t o0 = 0;
  for (; o0 + kOB <= O; o0 += kOB) conv_channels<kOB, NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, r);
  if (kOB > 4 && o0 + 4 <= O) {
    conv_channels<4, NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, r);
    o0 += 4;
  }
  if (o0 + 2 <= O) {
    conv_channels<2, NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, r);
    o0 += 2;
  }
  if (o0 < O) conv_channels<1, NT>(src, cs, C, wp, O, o0, tp, bias, out, ostride, r);
}

void conv_planar(const float* src, int64_t cs, int64_t C, const float* wp, int64_t O, const Taps& tp,
                 const float* bias, float* out, int64_t ostride, const Run& r) {
  switch (tp.n) {
    case 9: return conv_taps<9>(src, cs, C, wp, O, tp, bias, out, ostride, r);
    case 4: return conv_taps<4>(src, cs, C, wp, O, tp, bias, out, ostride, r);
    case 2: return conv_taps<2>(src, cs, C, wp, O, tp, bias, out, ostride, r);
    default: return conv_taps<1>(src, cs, C, wp, O, tp, bias, out, ostride, r);
  }
}

// ---- geometry of one problem ---------------------------------------------------------------------------------------
struct Geom {
  Layout x;               // the input's planes
  Layout g;               // dy's planes: one phase, dy pixel (oh, ow) at (oh + 2) P + ow + 2
  Run run;                // forward / weight-gradient vectors
  int64_t gq;             // dy's position 0 in its plane: 2 P + 2
  Taps fwd;               // the forward's 9 taps
  Taps dx[4];             // the input gradient's taps per phase a S + b
  int64_t dx_u0[4], dx_span;  // each phase's first position; the widest reach of the phases' runs
  Run dx_run[4];
  explicit Geom(const Shape& s) {
    const int64_t S = s.stride, P = s.Wo + 2;
    x = {S, s.pad_top, s.pad_left, P, round16((s.Ho + 2 / S) * P + W)};
    g = {1, 2, 2, P, round16((s.Ho + 3) * P + W)};
    gq = 2 * P + 2;
    run = Run::of(s.Ho, s.Wo, P);
    fwd.n = kTaps;
    for (int t = 0; t < kTaps; ++t) {
      const int kh = t / 3, kw = t % 3;
      fwd.tw[t] = t;
      fwd.off[t] = ((kh % S) * S + kw % S) * x.PL + (kh / S) * P + kw / S;
    }
    dx_span = 0;
    for (int64_t a = 0; a < S; ++a)
      for (int64_t b = 0; b < S; ++b) {
        Taps& tp = dx[a * S + b];
        tp.n = 0;
        for (int t = 0; t < kTaps; ++t) {
          const int kh = t / 3, kw = t % 3;
          if (kh % S != a || kw % S != b) continue;
          tp.tw[tp.n] = t;
          tp.off[tp.n++] = (2 - kh / S) * P + 2 - kw / S;
        }
        // the phase's pixel rows and columns: i from (first ih + pt) / S to (last ih + pt) / S, likewise j
        const int64_t ih0 = ((a - s.pad_top) % S + S) % S, iw0 = ((b - s.pad_left) % S + S) % S;
        const int64_t ih1 = ih0 + (s.H - 1 - ih0) / S * S, iw1 = iw0 + (s.W - 1 - iw0) / S * S;
        const int64_t u0 = ((ih0 + s.pad_top) / S) * P + (iw0 + s.pad_left) / S;
        dx_u0[a * S + b] = u0;
        dx_run[a * S + b] = ih0 < s.H && iw0 < s.W ? Run::of((ih1 - ih0) / S + 1, (iw1 - iw0) / S + 1, P) : Run{};
        dx_span = std::max(dx_span, dx_run[a * S + b].span());
      }
  }
};

// ---- weight gradient ---------------------------------------------------------------------------------------------
// part[((o0 + k) C + c) 9 + t] += sum over n images' positions of dy-plane o0 + k times x-plane c at tap t, k < WB.
// Image i's planes: gp + i * gimg (dy, from its position 0) and xp + i * ximg (x). part holds one vector (W floats) per
// (o, c, tap): with several images per call the accumulators stay in registers longer (an 8x8 map is only 5 vectors).
template <int WB>
inline void wgrad_block(const float* gp, int64_t gimg, const float* xp, int64_t ximg, int64_t n, int64_t C, int64_t o0,
                        int64_t c, const Geom& g, float* part) {
  vf acc[WB][kTaps];
#pragma GCC unroll 2
  for (int k = 0; k < WB; ++k)
#pragma GCC unroll 9
    for (int t = 0; t < kTaps; ++t) acc[k][t] = splat(0.0f);
  int64_t d[kTaps];
  for (int t = 0; t < kTaps; ++t) d[t] = g.fwd.off[t];
  for (int64_t i = 0; i < n; ++i) {
    const float* xs = xp + i * ximg + c * g.x.cs();
    const float* gs = gp + i * gimg + o0 * g.g.PL;
    for (int64_t v = 0; v < g.run.nvec; ++v) {
      const int64_t j = v * g.run.step;
      vf gv[WB];
#pragma GCC unroll 2
      for (int k = 0; k < WB; ++k) gv[k] = load(gs + k * g.g.PL + j);  // zero at junk positions and past the map
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

// ---- entry points ------------------------------------------------------------------------------------------------
void fwd(const float* x, const float* wp, const float* bias, float* y, const Shape& s, int64_t b0, int64_t b1) {
  const Geom g(s);
  const int64_t xi = s.H * s.W * s.C, yi = s.Ho * s.Wo * s.O;
  const int64_t span = g.run.span();
  std::vector<float> buf(s.C * g.x.cs() + s.O * span, 0.0f);  // planes (zero where no pixel lands), then out [O][span]
  float* pl = buf.data();
  float* out = pl + s.C * g.x.cs();
  const Layout ol = {1, 0, 0, g.x.P, 0};  // output position oh P + ow -> pixel (oh, ow)
  for (int64_t b = b0; b < b1; ++b) {
    to_planes(x + b * xi, s.C, s.H, s.W, g.x, pl);
    conv_planar(pl, g.x.cs(), s.C, wp, s.O, g.fwd, bias, out, span, g.run);
    from_phase(out, s.O, span, 0, ol, 0, 0, s.Ho, s.Wo, y + b * yi);
  }
}

// Images in groups of up to kGroupBytes of planes: every group's planes are built (and its input gradient computed)
// first, then its weight-gradient blocks run over all of the group's images.
constexpr int64_t kGroupBytes = 256 * 1024;
constexpr int64_t kMaxGroup = 8;

void bwd(const float* dy, const float* x, const float* wt, float* dx, float* dw, float* db, const Shape& s, int64_t b0,
         int64_t b1) {
  const Geom g(s);
  const int64_t C = s.C, O = s.O, S = s.stride, xi = s.H * s.W * C, yi = s.Ho * s.Wo * O;
  const int64_t gimg = O * g.g.PL, ximg = C * g.x.cs();
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(kMaxGroup, kGroupBytes / (4 * (gimg + ximg))));
  // dy planes [group][O][PL], x planes [group][C][phases][PL] (zero where no pixel lands), then one phase of the input
  // gradient [C][dx_span]
  std::vector<float> buf(group * (gimg + ximg) + C * g.dx_span, 0.0f);
  float* gp = buf.data();
  float* xp = gp + group * gimg;
  float* out = xp + group * ximg;
  // vector partials (W floats each): [O][C][9] of the weight gradient, then [O] of the bias gradient
  std::vector<float> part((O * C * kTaps + O) * W, 0.0f);
  float* bpart = part.data() + O * C * kTaps * W;
  for (int64_t b = b0; b < b1; b += group) {
    const int64_t n = std::min(group, b1 - b);
    for (int64_t i = 0; i < n; ++i) {
      to_planes(dy + (b + i) * yi, O, s.Ho, s.Wo, g.g, gp + i * gimg);
      to_planes(x + (b + i) * xi, C, s.H, s.W, g.x, xp + i * ximg);
      if (!dx) continue;
      for (int64_t ph = 0; ph < S * S; ++ph) {
        if (g.dx_run[ph].nvec == 0) continue;
        conv_planar(gp + i * gimg + g.dx_u0[ph], g.g.PL, O, wt, C, g.dx[ph], nullptr, out, g.dx_span, g.dx_run[ph]);
        from_phase(out, C, g.dx_span, g.dx_u0[ph], g.x, ph / S, ph % S, s.H, s.W, dx + (b + i) * xi);
      }
    }
    int64_t o0 = 0;
    for (; o0 + kWB <= O; o0 += kWB)
      for (int64_t c = 0; c < C; ++c) wgrad_block<kWB>(gp + g.gq, gimg, xp, ximg, n, C, o0, c, g, part.data());
    for (; o0 < O; ++o0)
      for (int64_t c = 0; c < C; ++c) wgrad_block<1>(gp + g.gq, gimg, xp, ximg, n, C, o0, c, g, part.data());
    for (int64_t o = 0; o < O; ++o) {
      vf acc = load(bpart + o * W);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t v = 0; v < g.run.nvec; ++v) acc += load(gp + i * gimg + o * g.g.PL + g.gq + v * g.run.step);
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
