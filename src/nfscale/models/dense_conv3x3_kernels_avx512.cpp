// dense_conv3x3_kernels_avx512.cpp - the dense small-channel 3x3 convolution kernels (dense_conv3x3_kernels_impl.h) built
// for avx512, 16 floats per vector. The target pragma comes after every library header so only these functions use it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nfscale/models/dense_conv3x3_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")
#pragma GCC optimize("O3")
#define D3K_W 16
#define D3K_NS isa_avx512
#define D3K_ISA_NAME "avx512"
#include "nfscale/models/dense_conv3x3_kernels_impl.h"
#undef D3K_W
#undef D3K_NS
#undef D3K_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::dense3x3 {
const Table& table_avx512() { return isa_avx512::table(); }
}  // namespace nfscale::models::dense3x3
