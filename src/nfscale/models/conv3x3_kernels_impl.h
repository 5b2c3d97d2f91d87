// conv3x3_kernels_impl.h - the body of the direct 3x3 / 16-channel-group convolution kernels (conv3x3_kernels.h),
// written once with GCC vector extensions of C3K_W floats and compiled three times (conv3x3_kernels_{avx512,avx2,
// generic}.cpp). Include only from those files, after defining C3K_W, C3K_NS and C3K_ISA_NAME.
// Register blocking: forward and input gradient accumulate one group's 16 outputs for P images at the same pixel
// (so every image of a block has the same valid taps and each loaded weight vector feeds P FMAs); the weight
// gradient accumulates a [CB ci, 16 co] block of one tap over all pixels.
// NOLINT(build/header_guard): intentionally re-included per ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/models/conv3x3_kernels.h"

namespace nfscale::models::conv3x3::C3K_NS {
namespace {

constexpr int W = C3K_W;
constexpr int NV = 16 / W;  // vectors per 16-channel group
typedef float vf __attribute__((vector_size(W * 4)));

// v - (+0) is v in every lane, -0 included, so this is a bare broadcast (vf{} + v is not: -0 + 0 = +0, an extra add)
inline vf splat(float v) { return v - vf{}; }
inline vf load(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// Images per register block (P accumulators of NV vectors, plus NV weight vectors and a broadcast, in registers).
constexpr int kPMax = W == 16 ? 16 : (W == 8 ? 6 : 2);
// Input channels per weight-gradient block (CB x NV accumulators).
constexpr int kCB = W == 16 ? 16 : (W == 8 ? 4 : 2);

// One group at one pixel for P images: dst_p[0..16) = init + sum_{i < ntaps} sum_{k < 16} src_p[off[i] + k] *
// wg[tap[i] * 256 + k * 16 + (0..16)], src_p = src + p * src_img, dst_p = dst + p * dst_img.
template <int P>
inline void gather_block(const float* src, int64_t src_img, const int64_t* off, const int* tap, int ntaps,
                         const float* wg, const float* init, float* dst, int64_t dst_img) {
  vf acc[P][NV];
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[p][v] = init ? load(init + v * W) : splat(0.0f);
  // the P images' 16 source channels of one tap, side by side: every broadcast below is then a fixed offset from one
  // base register (P strided rows would need P address registers and spill)
  alignas(64) float buf[P * 16];
  for (int i = 0; i < ntaps; ++i) {
    const float* s = src + off[i];
    const float* wt = wg + tap[i] * 256;
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) store(buf + p * 16 + v * W, load(s + p * src_img + v * W));
    for (int k = 0; k < 16; ++k) {
      vf wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = load(wt + k * 16 + v * W);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const vf b = splat(buf[p * 16 + k]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[p][v] += b * wv[v];
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(dst + p * dst_img + v * W, acc[p][v]);
}

// n images in blocks of kPMax, then 8 / 4 / 2 / 1.
inline void gather_images(int64_t n, const float* src, int64_t src_img, const int64_t* off, const int* tap, int ntaps,
                          const float* wg, const float* init, float* dst, int64_t dst_img) {
  int64_t p = 0;
  for (; p + kPMax <= n; p += kPMax)
    gather_block<kPMax>(src + p * src_img, src_img, off, tap, ntaps, wg, init, dst + p * dst_img, dst_img);
  if (kPMax > 8 && p + 8 <= n) {
    gather_block<(kPMax > 8 ? 8 : 1)>(src + p * src_img, src_img, off, tap, ntaps, wg, init, dst + p * dst_img,
                                      dst_img);
    p += kPMax > 8 ? 8 : 1;
  }
  for (; p + 4 <= n; p += 4)
    gather_block<4>(src + p * src_img, src_img, off, tap, ntaps, wg, init, dst + p * dst_img, dst_img);
  for (; p + 2 <= n; p += 2)
    gather_block<2>(src + p * src_img, src_img, off, tap, ntaps, wg, init, dst + p * dst_img, dst_img);
  for (; p < n; ++p) gather_block<1>(src + p * src_img, src_img, off, tap, ntaps, wg, init, dst + p * dst_img, dst_img);
}

void fwd(const float* x, const float* wp, const float* bias, float* y, const Shape& s, int64_t b0, int64_t b1) {
  const int64_t C = s.C, G = s.groups(), x_img = s.H * s.W * C, y_img = s.Ho * s.Wo * C;
  int64_t off[kTaps];
  int tap[kTaps];
  for (int64_t oh = 0; oh < s.Ho; ++oh)
    for (int64_t ow = 0; ow < s.Wo; ++ow) {
      int n = 0;  // valid taps of this output pixel (the same for every image)
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) {
          const int64_t ih = oh * s.stride + kh - s.pad_top, iw = ow * s.stride + kw - s.pad_left;
          if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
          off[n] = (ih * s.W + iw) * C;
          tap[n++] = kh * 3 + kw;
        }
      for (int64_t g = 0; g < G; ++g)
        gather_images(b1 - b0, x + b0 * x_img + g * 16, x_img, off, tap, n, wp + g * kTaps * 256,
                      bias ? bias + g * 16 : nullptr, y + b0 * y_img + (oh * s.Wo + ow) * C + g * 16, y_img);
    }
}

void bwd_data(const float* dy, const float* wt, float* dx, const Shape& s, int64_t b0, int64_t b1) {
  const int64_t C = s.C, G = s.groups(), x_img = s.H * s.W * C, y_img = s.Ho * s.Wo * C;
  int64_t off[kTaps];
  int tap[kTaps];
  for (int64_t ih = 0; ih < s.H; ++ih)
    for (int64_t iw = 0; iw < s.W; ++iw) {
      int n = 0;  // output pixels whose tap (kh, kw) reads (ih, iw): oh * stride = ih + pad_top - kh
      for (int kh = 0; kh < 3; ++kh) {
        const int64_t nh = ih + s.pad_top - kh;
        if (nh < 0 || nh % s.stride != 0 || nh / s.stride >= s.Ho) continue;
        for (int kw = 0; kw < 3; ++kw) {
          const int64_t nw = iw + s.pad_left - kw;
          if (nw < 0 || nw % s.stride != 0 || nw / s.stride >= s.Wo) continue;
          off[n] = ((nh / s.stride) * s.Wo + nw / s.stride) * C;
          tap[n++] = kh * 3 + kw;
        }
      }
      for (int64_t g = 0; g < G; ++g)
        gather_images(b1 - b0, dy + b0 * y_img + g * 16, y_img, off, tap, n, wt + g * kTaps * 256, nullptr,
                      dx + b0 * x_img + (ih * s.W + iw) * C + g * 16, x_img);
    }
}

// dwp[(c0 + c) * 16 + co] for c < CB, over all pixels.
template <int CB>
void bwd_weight_block(const float* dy, const float* x, float* dwp, const Shape& s, int64_t g, int kh, int kw, int c0) {
  const int64_t C = s.C, x_img = s.H * s.W * C, y_img = s.Ho * s.Wo * C;
  vf acc[CB][NV];
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[c][v] = splat(0.0f);
  // images outermost: the pixel loops walk each image's rows in memory order (images are often 4 KiB apart, which
  // would alias in L1 if the image index ran innermost)
  for (int64_t b = 0; b < s.B; ++b)
  for (int64_t oh = 0; oh < s.Ho; ++oh) {
    const int64_t ih = oh * s.stride + kh - s.pad_top;
    if (ih < 0 || ih >= s.H) continue;
    for (int64_t ow = 0; ow < s.Wo; ++ow) {
      const int64_t iw = ow * s.stride + kw - s.pad_left;
      if (iw < 0 || iw >= s.W) continue;
      const float* dp = dy + b * y_img + (oh * s.Wo + ow) * C + g * 16;
      const float* xp = x + b * x_img + (ih * s.W + iw) * C + g * 16 + c0;
      {
        vf d[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) d[v] = load(dp + v * W);
#pragma GCC unroll 16
        for (int c = 0; c < CB; ++c) {
          const vf bx = splat(xp[c]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[c][v] += bx * d[v];
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < CB; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) store(dwp + (c0 + c) * 16 + v * W, acc[c][v]);
}

void bwd_weight(const float* dy, const float* x, float* dwp, const Shape& s, int64_t g, int64_t t) {
  const int kh = int(t / 3), kw = int(t % 3);
  for (int c0 = 0; c0 < 16; c0 += kCB) bwd_weight_block<kCB>(dy, x, dwp, s, g, kh, kw, c0);
}

void bias_grad(const float* dy, float* db, int64_t n, int64_t C) {
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    vf acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = splat(0.0f);
    for (int64_t r = 0; r < n; ++r)
      for (int v = 0; v < NV; ++v) acc[v] += load(dy + r * C + c0 + v * W);
    for (int v = 0; v < NV; ++v) store(db + c0 + v * W, acc[v]);
  }
}

}  // namespace

const Table& table() {
  static const Table t = {C3K_ISA_NAME, &fwd, &bwd_data, &bwd_weight, &bias_grad};
  return t;
}

}  // namespace nfscale::models::conv3x3::C3K_NS
