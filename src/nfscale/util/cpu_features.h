// cpu_features.h - what the CPU (and OS) support, read once from CPUID/XGETBV: used to pick the fused kernels'
// instruction set at run time and to resolve precision "auto".
#pragma once
#include <string>

namespace nfscale {

struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA, with OS support for YMM state
  bool avx512 = false;      // AVX-512 F/BW/VL/DQ, with OS support for ZMM state
  bool avx512_bf16 = false; // AVX512_BF16 (vcvtne2ps2bf16, vdpbf16ps): oneDNN's bf16 GEMMs run natively
  std::string describe() const;  // e.g. "avx2 avx512 avx512_bf16"
};

// Detected once per process (thread-safe).
const CpuFeatures& cpu_features();

// The instruction set nfscale's own vector kernels (models' fused ops, optim's fused update) run with: the widest
// this CPU supports, or a narrower one forced by NFSCALE_FUSED_ISA=generic|avx2 (read once; a wider one than the CPU
// runs is ignored).
enum class KernelIsa { generic, avx2, avx512 };
KernelIsa kernel_isa();

// The build of a kernel table (a family's three getters) that kernel_isa() chose.
template <typename Table>
const Table& table_for_kernel_isa(const Table& (*generic)(), const Table& (*avx2)(), const Table& (*avx512)()) {
  switch (kernel_isa()) {
    case KernelIsa::avx512: return avx512();
    case KernelIsa::avx2: return avx2();
    default: return generic();
  }
}

}  // namespace nfscale
