// conv3x3_kernels_avx2.cpp - the direct 3x3 / 16-channel-group convolution kernels (conv3x3_kernels_impl.h) built for
// avx2, 8 floats per vector. The target pragma comes after every library header so only these functions use it.
#include <cstdint>
#include <cstring>

#include "nfscale/models/conv3x3_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("O3")
#define C3K_W 8
#define C3K_NS isa_avx2
#define C3K_ISA_NAME "avx2"
#include "nfscale/models/conv3x3_kernels_impl.h"
#undef C3K_W
#undef C3K_NS
#undef C3K_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::conv3x3 {
const Table& table_avx2() { return isa_avx2::table(); }
}  // namespace nfscale::models::conv3x3
