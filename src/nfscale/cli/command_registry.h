// command_registry.h - self-registration of CLI subcommands. Each cmd_<name>.cpp registers itself with a
// static RegisterCommand, so adding a subcommand touches only its own file.
#pragma once
#include <functional>
#include <vector>

namespace CLI {
class App;
}

namespace nfscale::cli {

using CommandSetup = std::function<void(CLI::App& root)>;

struct RegisterCommand {
  // `order` sorts subcommands in --help.
  RegisterCommand(int order, CommandSetup setup);
};

// All registered setups, sorted by order.
std::vector<CommandSetup> registered_commands();

}  // namespace nfscale::cli
