// dense_conv3x3_kernels.h - raw direct kernels for dense (ungrouped) 3x3 convolutions with few channels, stride 1 or 2,
// on channels_last fp32 maps (the ladder stems: 1 -> 8 stride 2, 8 -> 8 at 16x16, 8 -> widths[0]/2 stride 2; nano/micro
// -F0's 4- and 8-channel stages): forward, and a backward giving the input, weight and bias gradients in one pass per
// image. Each image is transposed into zero-padded per-channel planes (one per stride phase: stride 2 splits a map into
// its 4 even/odd row/column sub-maps); a vector is W consecutive positions of a plane, so every tap is an unaligned load
// at a fixed offset and every weight a broadcast. Three builds of one body (dense_conv3x3_kernels_impl.h): AVX-512,
// AVX2+FMA, baseline x86-64; the op (dense_conv3x3.h) picks one at run time. No torch types: plain pointers.
#pragma once
#include <cstdint>

namespace nfscale::models::dense3x3 {

constexpr int64_t kTaps = 9;  // 3x3, tap t = kh * 3 + kw

// x [B, H, W, C] -> y [B, Ho, Wo, O] (channels_last storage). Output pixel (oh, ow) and tap (kh, kw) read input pixel
// (oh * stride + kh - pad_top, ow * stride + kw - pad_left); outside = zero. Stride 1 needs pads 1 and Ho = H, Wo = W;
// stride 2 pads 0 or 1 (TF SAME: 0 before on even extents, 1 on odd ones).
struct Shape {
  int64_t B = 0, H = 0, W = 0, C = 0, O = 0, Ho = 0, Wo = 0, stride = 1, pad_top = 1, pad_left = 1;
};

struct Table {
  const char* isa;  // "avx512", "avx2", "generic"
  // Images [b0, b1): y[b, oh, ow, o] = bias[o] + sum_{c, t} x[b, src(oh, ow, t), c] * wp[(c * 9 + t) * O + o].
  // wp is the weight [O, C, 3, 3] packed [C, 9, O]; bias [O] or null (zero).
  void (*fwd)(const float* x, const float* wp, const float* bias, float* y, const Shape& s, int64_t b0, int64_t b1);
  // Images [b0, b1) of the backward of fwd, given dy [B, Ho, Wo, O]; wt is the weight packed [O, 9, C]:
  //   dx (if not null) [B, H, W, C]: dx[b, ih, iw, c] = sum over (oh, ow, t) reading (ih, iw) of
  //     sum_o dy[b, oh, ow, o] * wt[(o * 9 + t) * C + c];
  //   dw[(o * C + c) * 9 + t] = sum over these images and output pixels of dy[b, oh, ow, o] * x[b, src(oh, ow, t), c];
  //   db[o] = sum over these images and output pixels of dy[b, oh, ow, o].   dw [O * C * 9], db [O] overwritten.
  void (*bwd)(const float* dy, const float* x, const float* wt, float* dx, float* dw, float* db, const Shape& s,
              int64_t b0, int64_t b1);
};

const Table& table_avx512();
const Table& table_avx2();
const Table& table_generic();

}  // namespace nfscale::models::dense3x3
