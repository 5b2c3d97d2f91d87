// communicator.cpp - the flattening helpers shared by every backend: one contiguous buffer per dtype, because one
// large all-reduce is ~5x faster than many small ones, and Gloo 1.13 cannot reduce bf16.
#include "nfscale/dist/communicator.h"

#include <torch/torch.h>

#include <map>

namespace nfscale::dist {
namespace {

// Wire dtype of a tensor: reduced-precision floats travel as fp32.
at::ScalarType wire_type(at::ScalarType t) {
  return (t == at::kBFloat16 || t == at::kHalf) ? at::kFloat : t;
}

// Groups the defined tensors by wire dtype, preserving order.
std::map<at::ScalarType, std::vector<at::Tensor*>> by_wire_type(std::vector<at::Tensor>& tensors) {
  std::map<at::ScalarType, std::vector<at::Tensor*>> groups;
  for (auto& t : tensors)
    if (t.defined()) groups[wire_type(t.scalar_type())].push_back(&t);
  return groups;
}

at::Tensor flatten(const std::vector<at::Tensor*>& group, at::ScalarType wire, at::Device device) {
  std::vector<at::Tensor> flat;
  flat.reserve(group.size());
  for (const at::Tensor* t : group) flat.push_back(t->reshape({-1}).to(device, wire));  // [numel_i] on the backend's device
  return torch::cat(flat);                                                                // [sum numel_i]
}

void unflatten(const at::Tensor& buffer, const std::vector<at::Tensor*>& group) {
  int64_t offset = 0;
  for (at::Tensor* t : group) {
    const int64_t n = t->numel();
    t->copy_(buffer.narrow(0, offset, n).view(t->sizes()));  // back to t's dtype, device and layout
    offset += n;
  }
}

}  // namespace

bool Communicator::any(bool vote) {
  if (world_size() == 1) return vote;
  return dist::all_reduce_sum(*this, std::vector<double>{vote ? 1.0 : 0.0})[0] > 0.5;
}

void all_reduce_mean(Communicator& comm, std::vector<at::Tensor>& tensors) {
  if (comm.world_size() == 1) return;
  for (auto& [wire, group] : by_wire_type(tensors)) {
    std::vector<at::Tensor> buf{flatten(group, wire, comm.device())};  // [total] of the wire dtype
    comm.all_reduce_sum(buf);
    buf[0].div_(double(comm.world_size()));
    unflatten(buf[0], group);
  }
}

std::vector<double> all_reduce_sum(Communicator& comm, const std::vector<double>& values) {
  if (comm.world_size() == 1 || values.empty()) return values;
  std::vector<at::Tensor> buf{torch::tensor(values, torch::kFloat64).to(comm.device())};  // [n]
  comm.all_reduce_sum(buf);
  const at::Tensor host = buf[0].cpu();
  const double* p = host.data_ptr<double>();
  return std::vector<double>(p, p + values.size());
}

void broadcast_flat(Communicator& comm, std::vector<at::Tensor>& tensors, int root) {
  if (comm.world_size() == 1) return;
  for (auto& [wire, group] : by_wire_type(tensors)) {
    std::vector<at::Tensor> buf{flatten(group, wire, comm.device())};  // [total]
    comm.broadcast(buf, root);
    unflatten(buf[0], group);
  }
}

}  // namespace nfscale::dist
