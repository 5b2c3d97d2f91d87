// models_test_util.h - helpers shared by the models tests: a scope guard for the process-wide fused-ops switch.
#pragma once
#include "nfscale/models/fused_ops.h"

namespace nfscale::models::test {

// Sets the fused-ops switch and restores the previous value on scope exit (also when an assertion returns early).
struct FusedSwitch {
  bool before = fused_ops_enabled();
  explicit FusedSwitch(bool on) { set_fused_ops(on); }
  ~FusedSwitch() { set_fused_ops(before); }
  FusedSwitch(const FusedSwitch&) = delete;
  FusedSwitch& operator=(const FusedSwitch&) = delete;
};

}  // namespace nfscale::models::test
