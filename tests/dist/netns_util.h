// netns_util.h - "two hosts on one machine" for the dist tests: two network namespaces joined by a veth pair
// (iproute2), each end addressed in one /24, loopback up. Needs root; the namespaces (and with them the pair) are
// deleted when the object goes. `skip_reason` says why they could not be made (the kernel or sandbox refused).
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace nfscale::dist::testing {

inline std::string ip_binary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (std::filesystem::exists(p)) return p;
  return "";
}

// Runs a shell command quietly; true on exit status 0.
inline bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

struct TwoHosts {
  std::string ip;          // path of iproute2's `ip`
  std::string a, b;        // namespace names
  std::string va, vb;      // veth ends (va in a, vb in b)
  std::string addr_a, addr_b;
  std::string skip_reason;  // "" = ready

  // `prefix`: the namespaces' name prefix (unique per test); `subnet`: the first three octets, e.g. "10.213.7".
  TwoHosts(const std::string& prefix, const std::string& subnet) {
    ip = ip_binary();
    if (ip.empty()) {
      skip_reason = "iproute2's `ip` is not installed (scripts/setup.sh installs it)";
      return;
    }
    const std::string tag = std::to_string(::getpid() % 100000);
    a = prefix + "A" + tag;
    b = prefix + "B" + tag;
    if (!sh(ip + " netns add " + a) || !sh(ip + " netns add " + b)) {
      skip_reason = "the kernel (or this container) refused `ip netns add` (needs root and CAP_SYS_ADMIN): the "
                    "two-namespace test cannot run here";
      return;
    }
    va = prefix + "va" + tag;  // interface names: at most 15 characters
    vb = prefix + "vb" + tag;
    addr_a = subnet + ".1";
    addr_b = subnet + ".2";
    const std::vector<std::string> setup{ip + " link add " + va + " type veth peer name " + vb,
                                         ip + " link set " + va + " netns " + a,
                                         ip + " link set " + vb + " netns " + b,
                                         ip + " -n " + a + " addr add " + addr_a + "/24 dev " + va,
                                         ip + " -n " + b + " addr add " + addr_b + "/24 dev " + vb,
                                         ip + " -n " + a + " link set " + va + " up",
                                         ip + " -n " + b + " link set " + vb + " up",
                                         ip + " -n " + a + " link set lo up",
                                         ip + " -n " + b + " link set lo up"};
    for (const auto& cmd : setup)
      if (!sh(cmd)) {
        skip_reason = "the kernel refused a veth pair between namespaces (`" + cmd + "` failed)";
        return;
      }
  }
  ~TwoHosts() {
    if (!a.empty()) sh(ip + " netns del " + a);
    if (!b.empty()) sh(ip + " netns del " + b);
  }
  TwoHosts(const TwoHosts&) = delete;
  TwoHosts& operator=(const TwoHosts&) = delete;

  // argv prefix running a program inside namespace `ns`.
  std::vector<std::string> exec_in(const std::string& ns) const { return {ip, "netns", "exec", ns}; }
};

}  // namespace nfscale::dist::testing
