// dense_conv3x3_kernels_generic.cpp - the dense small-channel 3x3 convolution kernels (dense_conv3x3_kernels_impl.h) built
// for generic, 4 floats per vector. The target pragma comes after every library header so only these functions use it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "nfscale/models/dense_conv3x3_kernels.h"

#pragma GCC push_options
// baseline x86-64 (SSE2): no target pragma
#pragma GCC optimize("O3")
#define D3K_W 4
#define D3K_NS isa_generic
#define D3K_ISA_NAME "generic"
#include "nfscale/models/dense_conv3x3_kernels_impl.h"
#undef D3K_W
#undef D3K_NS
#undef D3K_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::dense3x3 {
const Table& table_generic() { return isa_generic::table(); }
}  // namespace nfscale::models::dense3x3
