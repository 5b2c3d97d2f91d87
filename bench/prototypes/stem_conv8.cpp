// stem_conv8.cpp - standalone prototype (not built by CMake: bench/prototypes/ is outside the bench glob; not part
// of nfscale) of a direct kernel for the ladder stem's 8 -> 8, 3x3, stride-1 SAME convolution at 16x16, fp32 channels_last, batch 128, one thread: the
// forward (also the input gradient, with the weights transposed and flipped) and the weight gradient. Checks both
// against fp64 loops and times them (docs/performance.md, issue 12 session 6). AVX-512 intrinsics only:
//   g++ -O3 -march=native -std=c++17 bench/prototypes/stem_conv8.cpp -o /tmp/proto_stem && /tmp/proto_stem
// Layout: per image the channels_last input is transposed into 8 zero-padded planes [8][18][18 + slack]; x [B,H,W,C],
// y [B,H,W,O] (channels_last), w [O][C][3][3].
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

constexpr int B = 128, C = 8, O = 8, H = 16, W = 16, P = 18;

// y = conv(x, w) + bias. One 16-pixel output row of all 8 output channels = 8 accumulators; 72 row loads, 576 FMAs.
void conv(const float* x, const float* w /*[O][C][3][3]*/, const float* bias, float* y) {
  alignas(64) float pl[C][P][P + 14];
  alignas(64) float out[O][H][W];
  std::memset(pl, 0, sizeof pl);
  for (int b = 0; b < B; ++b) {
    const float* xb = x + (size_t)b * H * W * C;
    for (int yy = 0; yy < H; ++yy)
      for (int xx = 0; xx < W; ++xx)
        for (int c = 0; c < C; ++c) pl[c][yy + 1][xx + 1] = xb[(yy * W + xx) * C + c];
    for (int yy = 0; yy < H; ++yy) {
      __m512 acc[O];
      for (int o = 0; o < O; ++o) acc[o] = _mm512_set1_ps(bias[o]);
      for (int c = 0; c < C; ++c)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const __m512 v = _mm512_loadu_ps(&pl[c][yy + ky][kx]);
            for (int o = 0; o < O; ++o)
              acc[o] = _mm512_fmadd_ps(v, _mm512_set1_ps(w[((o * C + c) * 3 + ky) * 3 + kx]), acc[o]);
          }
      for (int o = 0; o < O; ++o) _mm512_store_ps(&out[o][yy][0], acc[o]);
    }
    float* yb = y + (size_t)b * H * W * O;
    for (int p = 0; p < H * W; ++p)
      for (int o = 0; o < O; ++o) yb[p * O + o] = (&out[o][0][0])[p];
  }
}

// dw = sum over images and pixels of gy (x) shifted x. 2 output channels x 9 taps = 18 accumulators per image and
// input channel; vector partials reduced once at the end.
void wgrad(const float* x, const float* gy, float* dw /*[O][C][3][3]*/) {
  alignas(64) float pl[C][P][P + 14];
  alignas(64) float gp[O][H][W];
  alignas(64) static float part[O][C][9][16];
  std::memset(pl, 0, sizeof pl); std::memset(part, 0, sizeof part);
  for (int b = 0; b < B; ++b) {
    const float* xb = x + (size_t)b * H * W * C; const float* gb = gy + (size_t)b * H * W * O;
    for (int p = 0; p < H * W; ++p) {
      for (int c = 0; c < C; ++c) pl[c][p / W + 1][p % W + 1] = xb[p * C + c];
      for (int o = 0; o < O; ++o) (&gp[o][0][0])[p] = gb[p * O + o];
    }
    for (int c = 0; c < C; ++c)
      for (int o0 = 0; o0 < O; o0 += 2) {
        __m512 a0[9], a1[9];
        for (int t = 0; t < 9; ++t) a0[t] = _mm512_setzero_ps(), a1[t] = _mm512_setzero_ps();
        for (int yy = 0; yy < H; ++yy) {
          const __m512 g0 = _mm512_load_ps(&gp[o0][yy][0]), g1 = _mm512_load_ps(&gp[o0 + 1][yy][0]);
          for (int ky = 0; ky < 3; ++ky) for (int kx = 0; kx < 3; ++kx) {
            const __m512 v = _mm512_loadu_ps(&pl[c][yy + ky][kx]);
            a0[ky * 3 + kx] = _mm512_fmadd_ps(v, g0, a0[ky * 3 + kx]);
            a1[ky * 3 + kx] = _mm512_fmadd_ps(v, g1, a1[ky * 3 + kx]);
          }
        }
        for (int t = 0; t < 9; ++t) {
          _mm512_store_ps(part[o0][c][t], _mm512_add_ps(_mm512_load_ps(part[o0][c][t]), a0[t]));
          _mm512_store_ps(part[o0 + 1][c][t], _mm512_add_ps(_mm512_load_ps(part[o0 + 1][c][t]), a1[t]));
        }
      }
  }
  for (int o = 0; o < O; ++o) for (int c = 0; c < C; ++c) for (int t = 0; t < 9; ++t)
    dw[(o * C + c) * 9 + t] = _mm512_reduce_add_ps(_mm512_load_ps(part[o][c][t]));
}

template <typename F>
double median_ms(F f) {
  std::vector<double> ts;
  for (int it = 0; it < 31; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ts.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  return ts[15] * 1e3;
}

int main() {
  std::vector<float> x((size_t)B * H * W * C), w(O * C * 9), bias(O), y((size_t)B * H * W * O), g(y.size()), dw(w.size());
  std::mt19937 gen(1);
  std::normal_distribution<float> n;
  for (auto& v : x) v = n(gen);
  for (auto& v : w) v = n(gen) * 0.1f;
  for (auto& v : bias) v = n(gen);
  for (auto& v : g) v = n(gen);
  std::vector<double> ry(y.size()), rdw(w.size(), 0.0);  // fp64 references
  for (int b = 0; b < B; ++b)
    for (int yy = 0; yy < H; ++yy)
      for (int xx = 0; xx < W; ++xx)
        for (int o = 0; o < O; ++o) {
          const size_t oi = ((size_t)(b * H + yy) * W + xx) * O + o;
          double s = bias[o];
          for (int c = 0; c < C; ++c)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const int iy = yy + ky - 1, ix = xx + kx - 1;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const double xv = x[((size_t)(b * H + iy) * W + ix) * C + c];
                s += xv * w[((o * C + c) * 3 + ky) * 3 + kx];
                rdw[((o * C + c) * 3 + ky) * 3 + kx] += xv * g[oi];
              }
          ry[oi] = s;
        }
  conv(x.data(), w.data(), bias.data(), y.data());
  wgrad(x.data(), g.data(), dw.data());
  double ey = 0, edw = 0, mdw = 0;
  for (size_t i = 0; i < y.size(); ++i) ey = std::max(ey, std::abs(y[i] - ry[i]));
  for (size_t i = 0; i < dw.size(); ++i) edw = std::max(edw, std::abs(dw[i] - rdw[i])), mdw = std::max(mdw, std::abs(rdw[i]));
  const double flop = 2.0 * B * H * W * O * C * 9;
  const double tf = median_ms([&] { conv(x.data(), w.data(), bias.data(), y.data()); });
  const double tw = median_ms([&] { wgrad(x.data(), g.data(), dw.data()); });
  std::printf("forward: max |err| %.2e vs fp64, median %.3f ms (%.1f GFLOP/s)\n", ey, tf, flop / tf / 1e6);
  std::printf("weight gradient: max |err| %.2e (max |dw| %.1f), median %.3f ms (%.1f GFLOP/s)\n", edw, mdw, tw,
              flop / tw / 1e6);
  return ey < 1e-4 && edw < 1e-3 * mdw ? 0 : 1;  // fp32 rounding over 32768 terms per weight
}
