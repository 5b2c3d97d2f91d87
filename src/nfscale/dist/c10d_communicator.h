// c10d_communicator.h - the c10d Communicator: a TCPStore (rank 0 serves it) under a PrefixStore, and a process group
// with explicit timeouts (a crashed peer surfaces within milliseconds as an error; a hung peer at `timeout`).
// Backends: ProcessGroupGloo for CPU tensors (interface chosen by GLOO_SOCKET_IFNAME when set, else the interface
// of the host name), and ProcessGroupNCCL for one CUDA device per rank, compiled only where LibTorch defines
// USE_C10D_NCCL (a CUDA build). The NCCL path has never been compiled or run here (no GPU, CPU LibTorch).
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "nfscale/dist/communicator.h"

namespace nfscale::dist {

enum class Backend { Gloo, Nccl };

struct C10dOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0, world_size = 1;
  std::chrono::milliseconds timeout{60000};           // every collective (--dist-timeout)
  std::chrono::milliseconds startup_timeout{300000};  // waiting for all ranks to join (--dist-startup-timeout)
  std::string prefix = "nfscale";                     // store key prefix (a relaunch uses a new one)
  std::string interface;                              // Gloo: network interface ("" = GLOO_SOCKET_IFNAME or hostname)
  Backend backend = Backend::Gloo;
  int cuda_device = 0;                                // Nccl: this rank's GPU (LOCAL_RANK by default)
};

// True when this build of LibTorch has ProcessGroupNCCL (USE_C10D_NCCL).
bool nccl_available();

class C10dCommunicator : public Communicator {
 public:
  // Blocks until all ranks have joined (or throws UserError naming the master address and --dist-startup-timeout).
  // Backend::Nccl in a build without NCCL is a UserError saying so.
  explicit C10dCommunicator(const C10dOptions& options);
  ~C10dCommunicator() override;
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  at::Device device() const override;
  std::string backend() const override { return backend_ == Backend::Gloo ? "gloo" : "nccl"; }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override;
  void broadcast(std::vector<at::Tensor>& tensors, int root) override;
  void barrier() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_, world_;
  Backend backend_;
  int cuda_device_;
};

}  // namespace nfscale::dist
