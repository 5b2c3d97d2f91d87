// command_registry.h - self-registration of CLI subcommands. Each cmd_<name>.cpp registers itself with a
// static RegisterCommand, so adding a subcommand touches only its own file.
#pragma once
#include <functional>
#include <string>
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

// "" when argv names a registered subcommand (or none); otherwise the error for the unknown word, naming it and the
// nearest valid subcommand (main.cpp exits 2 with it).
std::string unknown_subcommand_error(CLI::App& app, int argc, const char* const* argv);

}  // namespace nfscale::cli
