// update_kernels_avx512.cpp - the fused SGD+AGC update kernels (update_kernels_impl.h) built for avx512, 16 floats per vector.
// The target pragma comes after every library header so only this file's own functions use the wider ISA.
#include <cstdint>
#include <cstring>

#include "nfscale/optim/update_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")
#pragma GCC optimize("O3")
#define NFU_W 16
#define NFU_NS isa_avx512
#define NFU_ISA_NAME "avx512"
#include "nfscale/optim/update_kernels_impl.h"
#undef NFU_W
#undef NFU_NS
#undef NFU_ISA_NAME
#pragma GCC pop_options

namespace nfscale::optim::update_kernels {
const KernelTable& kernels_avx512() { return isa_avx512::table(); }
}  // namespace nfscale::optim::update_kernels
