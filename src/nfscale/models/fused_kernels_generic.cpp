// fused_kernels_generic.cpp - the fused element-wise kernels (fused_kernels_impl.h) built for generic, 4 floats per vector.
// The target pragma comes after every library header so only this file's own functions use the wider ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/models/fused_kernels.h"

#pragma GCC push_options
// baseline x86-64 (SSE2): no target pragma
#pragma GCC optimize("O3")
#define NFK_W 4
#define NFK_NS isa_generic
#define NFK_ISA_NAME "generic"
#include "nfscale/models/fused_kernels_impl.h"
#undef NFK_W
#undef NFK_NS
#undef NFK_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::fused {
const KernelTable& kernels_generic() { return isa_generic::table(); }
}  // namespace nfscale::models::fused
