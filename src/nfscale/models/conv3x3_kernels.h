// conv3x3_kernels.h - raw direct kernels for channels_last 3x3 convolutions whose groups have 16 input and 16 output
// channels (the NFNet block's grouped convs: mini ladder C = 16 * G): forward, input gradient, weight gradient, bias
// gradient, fp32. Three builds of one body (conv3x3_kernels_impl.h): AVX-512, AVX2+FMA, baseline x86-64; the op
// (grouped_conv3x3.h) picks one at run time. No torch types here: plain pointers into dense buffers.
#pragma once
#include <cstdint>

namespace nfscale::models::conv3x3 {

constexpr int64_t kGroupWidth = 16;  // input = output channels per group
constexpr int64_t kTaps = 9;         // 3x3, tap t = kh * 3 + kw

// Geometry: input [B, H, W, C] and output [B, Ho, Wo, C] (channels_last storage), C = G * 16. Output pixel (oh, ow)
// and tap (kh, kw) read input pixel (oh * stride + kh - pad_top, ow * stride + kw - pad_left); outside = zero.
struct Shape {
  int64_t B = 0, H = 0, W = 0, C = 0, Ho = 0, Wo = 0, stride = 1, pad_top = 0, pad_left = 0;
  int64_t groups() const { return C / kGroupWidth; }
};

struct Table {
  const char* isa;  // "avx512", "avx2", "generic"
  // Images [b0, b1): y[b, oh, ow, g*16 + co] = bias[g*16 + co] + sum_{t, ci} x[b, src(oh, ow, t), g*16 + ci] *
  // wp[g, t, ci, co]. wp is the weight packed [G, 9, 16 (ci), 16 (co)]; bias [C] or null (zero).
  void (*fwd)(const float* x, const float* wp, const float* bias, float* y, const Shape& s, int64_t b0, int64_t b1);
  // Images [b0, b1): dx[b, ih, iw, g*16 + ci] = sum over (oh, ow, t) reading (ih, iw) of
  // sum_co dy[b, oh, ow, g*16 + co] * wt[g, t, co, ci]. wt is the weight packed [G, 9, 16 (co), 16 (ci)].
  void (*bwd_data)(const float* dy, const float* wt, float* dx, const Shape& s, int64_t b0, int64_t b1);
  // One group g and tap t: dwp[ci * 16 + co] = sum over all images and output pixels of
  // x[b, src(oh, ow, t), g*16 + ci] * dy[b, oh, ow, g*16 + co]   (dwp: 256 floats, overwritten).
  void (*bwd_weight)(const float* dy, const float* x, float* dwp, const Shape& s, int64_t g, int64_t t);
  // db[c] = sum over n rows of dy[row, c], c < C (C a multiple of 16); db overwritten.
  void (*bias_grad)(const float* dy, float* db, int64_t n, int64_t C);
};

const Table& table_avx512();
const Table& table_avx2();
const Table& table_generic();

}  // namespace nfscale::models::conv3x3
