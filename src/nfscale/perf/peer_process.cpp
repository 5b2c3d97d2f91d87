// peer_process.cpp - the Python peer child process (see peer_process.h).
#include "nfscale/perf/peer_process.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <vector>

#include "nfscale/models/registry.h"
#include "nfscale/util/error.h"
#include "nfscale/util/runtime.h"

namespace nfscale::perf {

namespace fs = std::filesystem;

PeerProcess::PeerProcess(const std::string& python, const std::string& script, const nlohmann::json& arch)
    : script_(script) {
  // A peer that dies must give an error here, not a SIGPIPE that kills nfscale on the next write.
  std::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2];
  require(pipe(in) == 0 && pipe(out) == 0, "bench: cannot create pipes for the peer " + script);
  const std::string a = arch.dump();
  const int blas = blas_threads();
  // nfscale's malloc thresholds, from their one source (util/runtime.h), for the peer to apply to itself.
  const MallocTuning m = malloc_tuning();
  const std::string malloc_env =
      m.tuned ? std::to_string(m.mmap_threshold) + ":" + std::to_string(m.trim_threshold) : std::string("off");
  pid_ = fork();
  require(pid_ >= 0, "bench: fork failed starting the peer " + script);
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    // Same OpenBLAS thread count as nfscale (its own pool fights the OpenMP threads; see util/runtime.h), so the
    // peer gets the fix too unless the caller set OPENBLAS_NUM_THREADS.
    if (blas > 0) setenv("OPENBLAS_NUM_THREADS", std::to_string(blas).c_str(), /*overwrite=*/0);
    setenv("NFSCALE_PEER_MALLOC", malloc_env.c_str(), /*overwrite=*/1);
    execlp(python.c_str(), python.c_str(), script.c_str(), a.c_str(), (char*)nullptr);
    std::perror(("bench: cannot run " + python).c_str());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_ = fdopen(in[1], "w");
  from_ = fdopen(out[0], "r");
  ready_ = read_reply();
}

PeerProcess::~PeerProcess() {
  if (to_) {
    std::fputs("{\"cmd\":\"quit\"}\n", to_);
    std::fclose(to_);
  }
  if (from_) std::fclose(from_);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

nlohmann::json PeerProcess::call(const nlohmann::json& command) {
  const std::string line = command.dump() + "\n";
  const bool sent = std::fputs(line.c_str(), to_) >= 0 && std::fflush(to_) == 0;
  require(sent, "bench: the Python peer " + script_ + " exited before the command " + command.dump() +
                    " (run it by hand to see why)");
  return read_reply();
}

nlohmann::json PeerProcess::read_reply() {
  std::string line;
  int c;
  while ((c = std::fgetc(from_)) != EOF && c != '\n') line.push_back(char(c));
  require(!line.empty(), "bench: the Python peer " + script_ +
                             " exited early (run it by hand to see why; --peer none skips the peer)");
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  require(j.is_object(), "bench: the Python peer " + script_ + " answered '" + line.substr(0, 200) +
                             "', not a JSON object (is --peer the right script?)");
  return j;
}

std::string find_peer_script(const std::string& given) {
  if (!given.empty()) return given;
  std::vector<fs::path> tries = {"bench/peer_nfnet.py"};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tries.push_back(exe.parent_path() / "../../bench/peer_nfnet.py");
    tries.push_back(exe.parent_path() / "../bench/peer_nfnet.py");
  }
  for (const auto& p : tries)
    if (fs::exists(p)) return fs::weakly_canonical(p).string();
  return "";
}

std::string family_peer_script(const std::string& nfnet_script, const std::string& model) {
  const std::string family = models::family_of(model).name();
  if (family == "nfnet") return nfnet_script;
  return (fs::path(nfnet_script).parent_path() / ("peer_" + family + ".py")).string();
}

nlohmann::json peer_architecture(const std::string& model, int64_t classes, int64_t in_channels, int64_t res,
                                 int64_t batch, int threads) {
  nlohmann::json arch = models::family_of(model).spec_json(model);
  arch.update(nlohmann::json{
      {"classes", classes}, {"in_channels", in_channels}, {"res", res}, {"batch", batch}, {"threads", threads}});
  return arch;
}

}  // namespace nfscale::perf
