// test_launch_env.cpp - the launcher's environment is read and checked: defaults without WORLD_SIZE, torchrun's
// variables, and a named error for every bad value.
#include <gtest/gtest.h>

#include <cstdlib>

#include "nfscale/dist/launch_env.h"
#include "nfscale/util/error.h"

namespace nfscale::dist {
namespace {

struct EnvGuard {
  EnvGuard() { clear(); }
  ~EnvGuard() { clear(); }
  static void clear() {
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                          "TORCHELASTIC_RESTART_COUNT"})
      ::unsetenv(v);
  }
};

std::string error_of() {
  try {
    read_launch_env();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, SingleProcessWithoutWorldSize) {
  EnvGuard g;
  const LaunchEnv e = read_launch_env();
  EXPECT_FALSE(e.distributed);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
}

TEST(LaunchEnv, ReadsTorchrunVariables) {
  EnvGuard g;
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  ::setenv("MASTER_ADDR", "10.0.0.1", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  ::setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
  const LaunchEnv e = read_launch_env();
  EXPECT_TRUE(e.distributed);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.1");
  EXPECT_EQ(e.master_port, 29511);
  EXPECT_EQ(e.restart_count, 2);
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  EnvGuard g;
  ::setenv("WORLD_SIZE", "two", 1);
  EXPECT_NE(error_of().find("WORLD_SIZE='two'"), std::string::npos) << error_of();
  ::setenv("WORLD_SIZE", "2", 1);
  EXPECT_NE(error_of().find("RANK is not"), std::string::npos) << error_of();
  ::setenv("RANK", "2", 1);
  EXPECT_NE(error_of().find("RANK='2'"), std::string::npos) << error_of();
  ::setenv("RANK", "1", 1);
  EXPECT_NE(error_of().find("MASTER_PORT is not set"), std::string::npos) << error_of();
  ::setenv("MASTER_PORT", "70000", 1);
  EXPECT_NE(error_of().find("MASTER_PORT='70000'"), std::string::npos) << error_of();
  ::setenv("MASTER_PORT", "29500", 1);
  EXPECT_EQ(error_of(), "");
}

}  // namespace
}  // namespace nfscale::dist
