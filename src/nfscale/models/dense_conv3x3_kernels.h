// dense_conv3x3_kernels.h - raw direct kernels for dense (ungrouped) 3x3, stride-1, SAME (pad 1) convolutions with few
// channels on channels_last fp32 maps (the ladder stems' 8 -> 8 convs at 16x16, nano/micro-F0's 4- and 8-channel
// stages): forward, and a backward giving the input gradient, weight gradient and bias gradient in one pass per image.
// Each image is transposed into zero-padded per-channel planes; a vector is W consecutive pixels of one plane, so every
// tap is an unaligned load at a fixed offset and every weight a broadcast. Three builds of one body
// (dense_conv3x3_kernels_impl.h): AVX-512, AVX2+FMA, baseline x86-64; the op (dense_conv3x3.h) picks one at run time.
// No torch types here: plain pointers into dense buffers.
#pragma once
#include <cstdint>

namespace nfscale::models::dense3x3 {

constexpr int64_t kTaps = 9;  // 3x3, tap t = kh * 3 + kw

// x [B, H, W, C] -> y [B, H, W, O] (channels_last storage), stride 1, one zero pixel of padding on every side.
struct Shape {
  int64_t B = 0, H = 0, W = 0, C = 0, O = 0;
};

struct Table {
  const char* isa;  // "avx512", "avx2", "generic"
  // Images [b0, b1): y[b, h, w, o] = bias[o] + sum_{c, kh, kw} x[b, h + kh - 1, w + kw - 1, c] * wp[(c * 9 + t) * O + o]
  // (zero outside the map). wp is the weight [O, C, 3, 3] packed [C, 9, O]; bias [O] or null (zero).
  void (*fwd)(const float* x, const float* wp, const float* bias, float* y, const Shape& s, int64_t b0, int64_t b1);
  // Images [b0, b1) of the backward of fwd, given dy [B, H, W, O]:
  //   dx (if not null) [B, H, W, C] = the same convolution of dy with wt[(o * 9 + t) * C + c] = w[o, c, 8 - t]
  //     (the weight transposed and flipped: stride 1 and symmetric padding make the input gradient a convolution);
  //   dw[(o * C + c) * 9 + t] = sum over these images and pixels of dy[b, h, w, o] * x[b, h + kh - 1, w + kw - 1, c];
  //   db[o] = sum over these images and pixels of dy[b, h, w, o].   dw [O * C * 9] and db [O] are overwritten.
  void (*bwd)(const float* dy, const float* x, const float* wt, float* dx, float* dw, float* db, const Shape& s,
              int64_t b0, int64_t b1);
};

const Table& table_avx512();
const Table& table_avx2();
const Table& table_generic();

}  // namespace nfscale::models::dense3x3
