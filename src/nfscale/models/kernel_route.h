// kernel_route.h - what the direct convolution routes (grouped_conv3x3, dense_conv3x3) share: the run-time choice of a
// kernel table among its AVX-512 / AVX2 / generic builds (the fused ops' choice, NFSCALE_FUSED_ISA narrows it; tests
// force one), the route's switch (on iff the fused ops are on, the route's env variable is not "0" and the chosen
// kernels pass their self-check; a set_* call overrides the env, not the fused-ops switch), the self-check's measure,
// and the bf16-autocast test of their routing rules.
#pragma once
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "nfscale/models/fused_kernels.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/util/cpu_features.h"
#include "nfscale/util/error.h"

namespace nfscale::models {

// Table: a struct of kernel pointers with a `const char* isa` member. One constant-initialised instance per route.
template <typename Table>
class KernelRoute {
 public:
  using Getter = const Table& (*)();
  using SelfCheck = double (*)(const Table&);  // max |kernel - fp64 loops| / tolerance; <= 1 passes
  // what: the route's name in messages ("3x3 conv", ...); env: its switch variable.
  constexpr KernelRoute(const char* what, const char* env, Getter generic, Getter avx2, Getter avx512,
                        SelfCheck self_check)
      : what_(what), env_(env), generic_(generic), avx2_(avx2), avx512_(avx512), self_check_(self_check) {}

  // The forced table, else the fused kernels' ISA.
  const Table& table() const {
    if (const Table* t = forced_.load()) return *t;
    const Table* t = default_.load();
    if (!t) default_.store(t = named(fused::fused_kernel_table().isa));
    return *t;
  }

  bool enabled() {
    if (!fused_ops_enabled()) return false;
    const int o = override_.load();
    if (o >= 0) return o == 1;
    std::call_once(once_, [this] {
      const char* env = std::getenv(env_);
      if (env && std::string(env) == "0") return;
      const Table& t = *named(fused::fused_kernel_table().isa);  // the default, whatever a test forces
      const double err = self_check_(t);
      if (!(err <= 1.0)) {
        std::fprintf(stderr, "[nfscale] %s %s kernels failed their self-check (error %.3g x tolerance); using oneDNN's "
                             "convolutions\n", t.isa, what_, err);
        return;
      }
      by_default_ = true;
    });
    return by_default_;
  }

  void set(bool enabled) { override_.store(enabled ? 1 : 0); }

  // "" restores the default choice; an unknown ISA or one this CPU cannot run throws.
  void force(const std::string& isa) { forced_.store(isa.empty() ? nullptr : &checked(isa)); }

  double self_check_error(const std::string& isa) const { return self_check_(checked(isa)); }

 private:
  const Table* named(const std::string& isa) const {
    const CpuFeatures& f = cpu_features();
    if (isa == "generic") return &generic_();
    if (isa == "avx2") return f.avx2 ? &avx2_() : nullptr;
    if (isa == "avx512") return f.avx512 ? &avx512_() : nullptr;
    return nullptr;
  }
  const Table& checked(const std::string& isa) const {
    const Table* t = named(isa);
    if (!t)
      throw UserError(std::string(what_) + " ISA '" + isa +
                      "': unknown or not supported by this CPU; valid: avx512, avx2, generic");
    return *t;
  }

  const char* what_;
  const char* env_;
  Getter generic_, avx2_, avx512_;
  SelfCheck self_check_;
  std::atomic<const Table*> forced_{nullptr};
  mutable std::atomic<const Table*> default_{nullptr};
  std::atomic<int> override_{-1};  // -1: not set, 0/1: set()
  std::once_flag once_;
  bool by_default_ = false;        // written once under once_
};

// True inside a CPU autocast scope whose lower-precision dtype is bf16 (the routes keep oneDNN's bf16 convolutions).
inline bool cpu_bf16_autocast_on() {
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
}

// One self-check problem: x, w, bias and dy of nx, nw, nb and ny N(0, 1) numbers from rng, through the fp64 reference
// ref(x, w, bias, dy, y, dx, dw, db) and the fp32 kernels kern(same, float) (y has ny, dx nx, dw nw, db nb elements);
// returns max |kernel - reference| / (1e-5 x the tensor's largest reference magnitude, at least 1) over the four
// outputs (sums cancel: single elements can be ~0).
template <typename Ref, typename Kern>
double self_check_problem(std::mt19937& rng, int64_t nx, int64_t nw, int64_t nb, int64_t ny, Ref ref, Kern kern) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(nx), w(nw), bias(nb), dy(ny);
  for (auto* v : {&x, &w, &bias, &dy})
    for (auto& e : *v) e = nd(rng);
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(bias.begin(), bias.end()),
      dyd(dy.begin(), dy.end()), yr(ny), dxr(nx), dwr(nw), dbr(nb);
  ref(xd.data(), wd.data(), bd.data(), dyd.data(), yr.data(), dxr.data(), dwr.data(), dbr.data());
  std::vector<float> y(ny), dx(nx), dw(nw), db(nb);
  kern(x.data(), w.data(), bias.data(), dy.data(), y.data(), dx.data(), dw.data(), db.data());
  double worst = 0.0;
  const auto err = [&](const std::vector<float>& a, const std::vector<double>& r) {
    double scale = 1.0;
    for (double v : r) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - r[i]) / (1e-5 * scale));
  };
  err(y, yr); err(dx, dxr); err(dw, dwr); err(db, dbr);
  return worst;
}

}  // namespace nfscale::models
