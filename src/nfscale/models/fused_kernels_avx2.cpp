// fused_kernels_avx2.cpp - the fused element-wise kernels (fused_kernels_impl.h) built for avx2, 8 floats per vector.
// The target pragma comes after every library header so only this file's own functions use the wider ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/models/fused_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")
#pragma GCC optimize("O3")
#define NFK_W 8
#define NFK_NS isa_avx2
#define NFK_ISA_NAME "avx2"
#include "nfscale/models/fused_kernels_impl.h"
#undef NFK_W
#undef NFK_NS
#undef NFK_ISA_NAME
#pragma GCC pop_options

namespace nfscale::models::fused {
const KernelTable& kernels_avx2() { return isa_avx2::table(); }
}  // namespace nfscale::models::fused
