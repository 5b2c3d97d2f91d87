// launch_env.cpp - parsing and checking of the launcher's environment variables (see launch_env.h).
#include "nfscale/dist/launch_env.h"

#include <cerrno>
#include <cstdlib>

#include "nfscale/util/error.h"

namespace nfscale::dist {
namespace {

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

int parse_int(const char* name, const char* value, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  require(end != value && *end == '\0' && errno == 0 && v >= lo && v <= hi,
          std::string("environment variable ") + name + "='" + value + "' must be an integer in [" +
              std::to_string(lo) + ", " + std::to_string(hi) +
              "]; launch with `nfscale train --nproc N` or torchrun, or unset it for a single process");
  return static_cast<int>(v);
}

}  // namespace

LaunchEnv read_launch_env() {
  LaunchEnv e;
  const char* ws = get("WORLD_SIZE");
  if (!ws) return e;
  e.distributed = true;
  e.world_size = parse_int("WORLD_SIZE", ws, 1, 65536);
  const char* rank = get("RANK");
  require(rank != nullptr, "environment variable WORLD_SIZE=" + std::string(ws) +
                               " is set but RANK is not; a launcher (torchrun, nfscale --nproc) sets both");
  e.rank = parse_int("RANK", rank, 0, e.world_size - 1);
  if (const char* v = get("LOCAL_WORLD_SIZE")) e.local_world_size = parse_int("LOCAL_WORLD_SIZE", v, 1, e.world_size);
  else e.local_world_size = e.world_size;
  if (const char* v = get("LOCAL_RANK")) e.local_rank = parse_int("LOCAL_RANK", v, 0, e.local_world_size - 1);
  else e.local_rank = e.rank % e.local_world_size;
  if (const char* v = get("MASTER_ADDR")) e.master_addr = v;
  if (e.world_size > 1) {
    const char* port = get("MASTER_PORT");
    require(port != nullptr, "environment variable MASTER_PORT is not set (WORLD_SIZE=" + std::string(ws) +
                                 "); set it to a free TCP port on MASTER_ADDR (" + e.master_addr + ")");
    e.master_port = parse_int("MASTER_PORT", port, 1, 65535);
  }
  if (const char* v = get("TORCHELASTIC_RESTART_COUNT")) e.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", v, 0, 1 << 30);
  return e;
}

}  // namespace nfscale::dist
