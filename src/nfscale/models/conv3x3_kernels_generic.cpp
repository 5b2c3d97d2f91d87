// conv3x3_kernels_generic.cpp - the direct 3x3 / 16-channel-group convolution kernels (conv3x3_kernels_impl.h) built for
// generic, 4 floats per vector. The target pragma comes after every library header so only these functions use it.
#include <cstdint>
#include <cstring>

#include "nfscale/models/conv3x3_kernels.h"

#pragma GCC push_options
// baseline x86-64 (SSE2): no target pragma
#pragma GCC optimize("O3")
#define C3K_W 4
#define C3K_NS isa_generic
#define C3K_ISA_NAME "generic"
#include "nfscale/models/conv3x3_kernels_impl.h"
#undef C3K_W
#undef C3K_NS
#undef C3K_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::conv3x3 {
const Table& table_generic() { return isa_generic::table(); }
}  // namespace nfscale::models::conv3x3
