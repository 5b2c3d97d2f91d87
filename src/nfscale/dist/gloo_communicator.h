// gloo_communicator.h - the c10d Communicator for CPU tensors: a TCPStore (rank 0 serves it) under a PrefixStore,
// and ProcessGroupGloo with explicit timeouts (a crashed peer surfaces within milliseconds as an error; a hung peer
// at `timeout`). Interface chosen by GLOO_SOCKET_IFNAME when set, else the interface of the host name.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "nfscale/dist/communicator.h"

namespace nfscale::dist {

struct GlooOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0, world_size = 1;
  std::chrono::milliseconds timeout{60000};           // every collective (--dist-timeout)
  std::chrono::milliseconds startup_timeout{300000};  // waiting for all ranks to join (--dist-startup-timeout)
  std::string prefix = "nfscale";                     // store key prefix (a relaunch uses a new one)
  std::string interface;                              // network interface ("" = GLOO_SOCKET_IFNAME or hostname)
};

class GlooCommunicator : public Communicator {
 public:
  // Blocks until all ranks have joined (or throws UserError naming the master address and --dist-startup-timeout).
  explicit GlooCommunicator(const GlooOptions& options);
  ~GlooCommunicator() override;
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override;
  void broadcast(std::vector<at::Tensor>& tensors, int root) override;
  void barrier() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_, world_;
};

}  // namespace nfscale::dist
