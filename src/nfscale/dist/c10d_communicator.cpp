// c10d_communicator.cpp - c10d TCPStore + PrefixStore + ProcessGroupGloo (or ProcessGroupNCCL in a CUDA build)
// behind the Communicator interface.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // ProcessGroupGloo.hpp declares the class only under this macro (Debian's libtorch has it)
#endif
#include "nfscale/dist/c10d_communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <exception>

#include "nfscale/util/error.h"

namespace nfscale::dist {

struct C10dCommunicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;  // Gloo or NCCL (both derive from ProcessGroup in LibTorch 1.13)
};

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

namespace {

[[noreturn]] void fail(const char* what, int rank, int world, const std::exception& e) {
  throw UserError(std::string("data-parallel ") + what + " failed on rank " + std::to_string(rank) + " of " +
                  std::to_string(world) + ": " + e.what() +
                  "\n(another rank probably exited - see its log - or did not answer within --dist-timeout)");
}

}  // namespace

C10dCommunicator::C10dCommunicator(const C10dOptions& o)
    : impl_(std::make_unique<Impl>()), rank_(o.rank), world_(o.world_size), backend_(o.backend),
      cuda_device_(o.cuda_device) {
  require(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size,
          "distributed: rank " + std::to_string(o.rank) + " outside world size " + std::to_string(o.world_size));
  require(o.backend == Backend::Gloo || nccl_available(),
          "distributed: CUDA ranks need ProcessGroupNCCL, and this LibTorch was built without it (USE_C10D_NCCL); "
          "use --device cpu, or build nfscale against a CUDA LibTorch");
  const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.numWorkers = static_cast<std::size_t>(o.world_size);
    so.waitWorkers = true;
    so.timeout = o.startup_timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    impl_->store = c10::make_intrusive<c10d::PrefixStore>(o.prefix, tcp);
    // The store's constructor waits (up to startup_timeout) until every rank has joined; the mesh connection and
    // every later collective use the run-time timeout.
    if (o.backend == Backend::Nccl) {
#ifdef USE_C10D_NCCL
      // Untested here (no GPU): one device per rank, selected before the communicator is created.
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(o.cuda_device));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = o.timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, o.rank, o.world_size, opts);
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(o.timeout);
      std::string iface = o.interface;
      if (iface.empty())
        if (const char* env = std::getenv("GLOO_SOCKET_IFNAME")) iface = env;
      if (!iface.empty())
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 1;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, o.rank, o.world_size, opts);
    }
    impl_->store->setTimeout(o.timeout);
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError("distributed start-up of rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) +
                    " at " + where + " failed: " + e.what() +
                    "\n(check MASTER_ADDR/MASTER_PORT, that the port is free on rank 0's host, GLOO_SOCKET_IFNAME, "
                    "and that every rank starts within --dist-startup-timeout)");
  }
}

C10dCommunicator::~C10dCommunicator() = default;

at::Device C10dCommunicator::device() const {
  return backend_ == Backend::Nccl ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(cuda_device_))
                                   : at::Device(at::kCPU);
}

void C10dCommunicator::all_reduce_sum(std::vector<at::Tensor>& tensors) {
  try {
    c10d::AllreduceOptions ao;
    ao.reduceOp = c10d::ReduceOp::SUM;
    impl_->group->allreduce(tensors, ao)->wait();
  } catch (const std::exception& e) {
    fail("all-reduce", rank_, world_, e);
  }
}

void C10dCommunicator::broadcast(std::vector<at::Tensor>& tensors, int root) {
  try {
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    bo.rootTensor = 0;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      impl_->group->broadcast(one, bo)->wait();
    }
  } catch (const std::exception& e) {
    fail("broadcast", rank_, world_, e);
  }
}

void C10dCommunicator::barrier() {
  try {
    impl_->group->barrier()->wait();
  } catch (const std::exception& e) {
    fail("barrier", rank_, world_, e);
  }
}

}  // namespace nfscale::dist
