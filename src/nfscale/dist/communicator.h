// communicator.h - the collective operations data-parallel training needs (rank, world size, all-reduce, broadcast,
// barrier, a stop vote), behind one interface: LocalCommunicator (one process, no-op) and C10dCommunicator (c10d:
// Gloo on CPU, NCCL in a CUDA build).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace nfscale::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Where this backend's buffers live: CPU for Gloo, the rank's GPU for NCCL.
  virtual at::Device device() const { return at::Device(at::kCPU); }
  virtual std::string backend() const = 0;  // "local", "gloo", "nccl"
  // In place: every tensor becomes the element-wise sum over ranks. Tensors must be contiguous tensors on device()
  // of a dtype the backend reduces (Gloo 1.13: no bf16; use all_reduce_mean, which handles it).
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // In place: every rank's tensors become root's.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual void barrier() = 0;
  // True on every rank if any rank voted true (the stop decision: divergence, signal, time limit).
  bool any(bool vote);
};

// Averages `tensors` over ranks in place: one flat fp64/fp32 buffer per dtype (bf16/fp16 reduced in fp32), one
// all-reduce SUM per buffer, division by the world size, copy back. No-op for world size 1 (bit-identical).
void all_reduce_mean(Communicator& comm, std::vector<at::Tensor>& tensors);

// Sum over ranks of a few doubles (evaluation counts, losses): one fp64 all-reduce.
std::vector<double> all_reduce_sum(Communicator& comm, const std::vector<double>& values);

// Copies rank `root`'s values of `tensors` into every rank's (one flat buffer per dtype).
void broadcast_flat(Communicator& comm, std::vector<at::Tensor>& tensors, int root);

}  // namespace nfscale::dist
