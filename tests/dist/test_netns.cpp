// test_netns.cpp - two hosts on one machine: two network namespaces joined by a veth pair (iproute2), a 2-rank
// `nfscale train` with rank 0 (and the TCPStore) in one and rank 1 in the other, Gloo bound to the veth interfaces
// by GLOO_SOCKET_IFNAME. The weights equal the same run's over loopback (--nproc 2) bit for bit, and the gradient
// traffic went over the veth pair. Skips (saying why) only where the kernel or the sandbox refuses namespaces; the
// namespaces (and with them the veth pair) are deleted on every exit path of the test.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "dist_test_util.h"
#include "netns_util.h"
#include "nfscale/util/process.h"

namespace nfscale::dist {
namespace {
using namespace testing;

// Bytes received on `dev` inside namespace `ns` (ip -j -s link), or -1.
int64_t rx_bytes(const std::string& ip, const std::string& ns, const std::string& dev) {
  const std::string out = "/tmp/nfscale_netns_rx_" + std::to_string(::getpid());
  const std::string cmd = ip + " -n " + ns + " -j -s link show " + dev + " > " + out + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return -1;
  auto j = nlohmann::json::parse(slurp(out), nullptr, false);
  std::filesystem::remove(out);
  if (!j.is_array() || j.empty()) return -1;
  return j[0]["stats64"]["rx"]["bytes"].get<int64_t>();
}

TEST(DistNetns, TwoRanksInTwoNetworkNamespacesOverAVethPair) {
  NFSCALE_REQUIRE_BINARY();
  TwoHosts hosts("nfs", "10.213.7");
  if (!hosts.skip_reason.empty()) GTEST_SKIP() << hosts.skip_reason;
  const std::string& ip = hosts.ip;
  const std::string &va = hosts.va, &vb = hosts.vb;

  const std::string ref = fresh_dir("netns_ref"), dir = fresh_dir("netns_run");
  ASSERT_EQ(run_cli(train_args(ref, 2), ref).code, 0);
  const int64_t rx_before = rx_bytes(ip, hosts.b, vb);
  ASSERT_GE(rx_before, 0) << "cannot read the veth statistics with `ip -j -s link`";

  auto rank = [&](int r, const std::string& space, const std::string& dev) {
    std::vector<std::string> args{ip, "netns", "exec", space, "/usr/bin/env",
                                  "RANK=" + std::to_string(r), "WORLD_SIZE=2", "LOCAL_RANK=0", "LOCAL_WORLD_SIZE=1",
                                  "MASTER_ADDR=" + hosts.addr_a, "MASTER_PORT=29517", "GLOO_SOCKET_IFNAME=" + dev,
                                  binary_path()};
    for (const auto& a : train_args(dir, 1)) args.push_back(a);
    SpawnOptions so;
    so.stdout_path = dir + "/rank" + std::to_string(r) + ".out";
    so.stderr_path = dir + "/rank" + std::to_string(r) + ".err";
    return spawn_process(args, so);
  };
  const pid_t p0 = rank(0, hosts.a, va), p1 = rank(1, hosts.b, vb);
  const int c0 = wait_process(p0), c1 = wait_process(p1);
  EXPECT_EQ(c0, 0) << slurp(dir + "/rank0.err");
  EXPECT_EQ(c1, 0) << slurp(dir + "/rank1.err");
  ASSERT_TRUE(std::filesystem::exists(dir + "/weights.pt"));
  auto wr = weights_of(ref), wn = weights_of(dir);
  std::string first;
  EXPECT_EQ(count_different(*wr, *wn, &first), 0) << "first differing tensor " << first;
  const int64_t rx_after = rx_bytes(ip, hosts.b, vb);
  // 24 steps x one fp32 all-reduce of ~350k gradients: megabytes, all of it through the veth pair.
  EXPECT_GT(rx_after - rx_before, 1000000) << "rank 1's veth received too little: did Gloo use another interface?";
  std::printf("[ info ] rank 1's veth %s received %.1f MB during the run\n", vb.c_str(), (rx_after - rx_before) / 1e6);
}

}  // namespace
}  // namespace nfscale::dist
