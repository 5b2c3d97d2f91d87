// dense_conv3x3_kernels_avx2.cpp - the dense small-channel 3x3 convolution kernels (dense_conv3x3_kernels_impl.h) built
// for avx2, 8 floats per vector. The target pragma comes after every library header so only these functions use it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nfscale/models/dense_conv3x3_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("O3")
#define D3K_W 8
#define D3K_NS isa_avx2
#define D3K_ISA_NAME "avx2"
#include "nfscale/models/dense_conv3x3_kernels_impl.h"
#undef D3K_W
#undef D3K_NS
#undef D3K_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::dense3x3 {
const Table& table_avx2() { return isa_avx2::table(); }
}  // namespace nfscale::models::dense3x3
