// update_kernels_avx2.cpp - the fused SGD+AGC update kernels (update_kernels_impl.h) built for avx2, 8 floats per vector.
// The target pragma comes after every library header so only this file's own functions use the wider ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/optim/update_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")
#pragma GCC optimize("O3")
#define NFU_W 8
#define NFU_NS isa_avx2
#define NFU_ISA_NAME "avx2"
#include "nfscale/optim/update_kernels_impl.h"
#undef NFU_W
#undef NFU_NS
#undef NFU_ISA_NAME
#pragma GCC pop_options

namespace nfscale::optim::update_kernels {
const KernelTable& kernels_avx2() { return isa_avx2::table(); }
}  // namespace nfscale::optim::update_kernels
