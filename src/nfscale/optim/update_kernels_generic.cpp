// update_kernels_generic.cpp - the fused SGD+AGC update kernels (update_kernels_impl.h) built for generic, 4 floats per vector.
// The target pragma comes after every library header so only this file's own functions use the wider ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/optim/update_kernels.h"

#pragma GCC push_options
// baseline x86-64 (SSE2): no target pragma
#pragma GCC optimize("O3")
#define NFU_W 4
#define NFU_NS isa_generic
#define NFU_ISA_NAME "generic"
#include "nfscale/optim/update_kernels_impl.h"
#undef NFU_W
#undef NFU_NS
#undef NFU_ISA_NAME
#pragma GCC pop_options

namespace nfscale::optim::update_kernels {
const KernelTable& kernels_generic() { return isa_generic::table(); }
}  // namespace nfscale::optim::update_kernels
