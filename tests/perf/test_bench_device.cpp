// test_bench_device.cpp - `nfscale bench --device`: the fused CPU routes are timed only on the CPU (any other device
// runs the ATen path, fp32 only), the device is recorded with the figures, and a device this machine does not have is
// a named error before anything runs.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "nfscale/models/fused_ops.h"
#include "nfscale/perf/bench_run.h"
#include "nfscale/util/error.h"
#include "bench_test_util.h"

namespace nfscale::perf {
namespace {

// The smallest real benchmark on `device`.
BenchOptions tiny_options(const std::string& device) {
  BenchOptions o = testing::tiny_options();
  o.device = device;
  return o;
}

std::string error_of(const BenchOptions& o) {
  try {
    run_bench(o);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(BenchDevice, FusedRoutesAndBf16OnlyOnTheCpu) {
  const c10::Device cpu(c10::kCPU), cuda(c10::kCUDA, 0);
  EXPECT_TRUE(fused_routes_for(true, cpu));
  EXPECT_FALSE(fused_routes_for(false, cpu));
  EXPECT_FALSE(fused_routes_for(true, cuda));
  EXPECT_EQ(device_settings("best", cpu).size(), 4u);
  const auto off_cpu = device_settings("best", cuda);
  ASSERT_EQ(off_cpu.size(), 2u);
  for (const auto& st : off_cpu) EXPECT_FALSE(st.bf16) << st.str();
  std::string msg;
  try {
    device_settings("bf16", cuda);
  } catch (const UserError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("--precision bf16 --device cuda:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pass --precision fp32"), std::string::npos) << msg;
}

TEST(BenchDevice, CpuRunRecordsItsDeviceAndKeepsTheSwitch) {
  const bool before = models::fused_ops_enabled();
  const nlohmann::json r = run_bench(tiny_options("cpu"));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]["device"], "cpu");
  EXPECT_EQ(r[0]["fused_ops"].get<bool>(), before);
  EXPECT_EQ(models::fused_ops_enabled(), before);
  EXPECT_GT(r[0]["nfscale"]["train_img_s"][0].get<double>(), 0.0);
}

TEST(BenchDevice, AMissingDeviceIsANamedErrorBeforeAnyWork) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a CUDA device is present";
  std::string msg = error_of(tiny_options("cuda"));
  EXPECT_NE(msg.find("bench --device 'cuda'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no CUDA device"), std::string::npos) << msg;
  msg = error_of(tiny_options("tpu"));
  EXPECT_NE(msg.find("bench --device 'tpu': unknown device"), std::string::npos) << msg;
}

}  // namespace
}  // namespace nfscale::perf
