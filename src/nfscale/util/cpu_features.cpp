// cpu_features.cpp - CPUID/XGETBV feature detection (see cpu_features.h); all false on non-x86 builds.
#include "nfscale/util/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <cstdint>
#include <cstdlib>
#include <string>

namespace nfscale {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
  if (!osxsave || !avx) return f;
  uint32_t xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_os = (xcr0_lo & 0x6u) == 0x6u;     // SSE + AVX state
  const bool zmm_os = (xcr0_lo & 0xE6u) == 0xE6u;   // + opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  f.avx2 = ymm_os && avx2 && fma;
  f.avx512 = zmm_os && f512 && dq && bw && vl && f.avx2;
  __cpuid_count(7, 1, a, b, c, d);
  f.avx512_bf16 = f.avx512 && (a & (1u << 5));
#endif
  return f;
}

}  // namespace

std::string CpuFeatures::describe() const {
  std::string s;
  if (avx2) s += "avx2 ";
  if (avx512) s += "avx512 ";
  if (avx512_bf16) s += "avx512_bf16 ";
  if (s.empty()) return "baseline";
  s.pop_back();
  return s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

KernelIsa kernel_isa() {
  static const KernelIsa isa = [] {
    const CpuFeatures& f = cpu_features();
    const char* env = std::getenv("NFSCALE_FUSED_ISA");
    const std::string force = env ? env : "";
    if (force == "generic") return KernelIsa::generic;
    if (force == "avx2" && f.avx2) return KernelIsa::avx2;
    if (f.avx512) return KernelIsa::avx512;
    if (f.avx2) return KernelIsa::avx2;
    return KernelIsa::generic;
  }();
  return isa;
}

}  // namespace nfscale
