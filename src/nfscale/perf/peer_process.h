// peer_process.h - the Python peer of `nfscale bench` (bench/peer_nfnet.py, peer_vit.py) as a child process spoken
// to in JSON lines over two pipes, how to find its script, and the architecture description it builds its network from.
#pragma once
#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace nfscale::perf {

class PeerProcess {
 public:
  // Starts `python script arch.dump()` with OPENBLAS_NUM_THREADS set to nfscale's BLAS thread count (unless the
  // caller set it) and reads its first line (the "ready" object). UserError when the process cannot be started or
  // exits before answering (the message says how to see why). Sets SIGPIPE to ignored for the process, so a peer
  // that dies turns the next call() into a UserError instead of killing nfscale.
  PeerProcess(const std::string& python, const std::string& script, const nlohmann::json& arch);
  ~PeerProcess();  // sends {"cmd":"quit"} and waits for the process
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  // Sends one command object and returns the reply object; UserError when the peer has exited or replies with
  // something that is not a JSON object.
  nlohmann::json call(const nlohmann::json& command);
  const nlohmann::json& ready() const { return ready_; }

 private:
  nlohmann::json read_reply();
  std::string script_;
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  nlohmann::json ready_;
};

// `given` when not empty; else bench/peer_nfnet.py relative to the working directory or to the binary
// (build/bin/../../bench). "" when not found.
std::string find_peer_script(const std::string& given);
// The peer of `model`'s family: peer_<family>.py in the folder of `nfnet_script` (the NFNet peer itself for NFNets).
std::string family_peer_script(const std::string& nfnet_script, const std::string& model);

// The JSON object the peer builds its network from: the family's full spec of `model` (a name or JSON spec;
// models/family.h spec_json) plus classes, input channels, resolution, batch and intra-op threads.
nlohmann::json peer_architecture(const std::string& model, int64_t classes, int64_t in_channels, int64_t res,
                                 int64_t batch, int threads);

}  // namespace nfscale::perf
