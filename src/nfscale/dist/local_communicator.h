// local_communicator.h - the one-process Communicator: rank 0 of a world of 1; every collective is a no-op.
#pragma once
#include "nfscale/dist/communicator.h"

namespace nfscale::dist {

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  void broadcast(std::vector<at::Tensor>&, int) override {}
  void barrier() override {}
};

}  // namespace nfscale::dist
