// conv3x3_kernels_avx512.cpp - the direct 3x3 / 16-channel-group convolution kernels (conv3x3_kernels_impl.h) built for
// avx512, 16 floats per vector. The target pragma comes after every library header so only these functions use it.
#include <cstdint>
#include <cstring>

#include "nfscale/models/conv3x3_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")
#pragma GCC optimize("O3")
#define C3K_W 16
#define C3K_NS isa_avx512
#define C3K_ISA_NAME "avx512"
#include "nfscale/models/conv3x3_kernels_impl.h"
#undef C3K_W
#undef C3K_NS
#undef C3K_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::conv3x3 {
const Table& table_avx512() { return isa_avx512::table(); }
}  // namespace nfscale::models::conv3x3
