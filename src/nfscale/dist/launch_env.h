// launch_env.h - the launcher's environment (torchrun's variables, or nfscale's own --nproc launcher): rank, world
// size, local rank, master address/port, elastic restart count; read and checked once at start-up.
#pragma once
#include <string>

namespace nfscale::dist {

struct LaunchEnv {
  bool distributed = false;     // WORLD_SIZE was set (even to 1)
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int restart_count = 0;        // TORCHELASTIC_RESTART_COUNT (0 on the first launch)
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT.
// Without WORLD_SIZE the result is the single-process default. Throws UserError naming the variable on a bad value
// (not an integer, out of range, RANK >= WORLD_SIZE, WORLD_SIZE without RANK or MASTER_PORT).
LaunchEnv read_launch_env();

}  // namespace nfscale::dist
