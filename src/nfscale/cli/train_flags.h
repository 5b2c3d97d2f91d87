// train_flags.h - CLI11 flags for every TrainConfig field, shared by `train`, `finetune` and `sweep`.
#pragma once
#include <string>

namespace CLI {
class App;
}
namespace nfscale::train {
struct TrainConfig;
}

namespace nfscale::cli {

// Adds one flag per training setting to `app`, bound to `config` (defaults shown in --help).
void add_train_flags(CLI::App& app, train::TrainConfig& config);

// Loads a TOML or JSON settings file (by extension) into a JSON object, for config_from_json.
// Throws UserError naming the file and the parse error position.
std::string settings_file_to_json(const std::string& path);

// Applies a settings file to `config`, then re-applies the flags the user gave explicitly on the command line
// (command line wins over the file).
void apply_settings_file(CLI::App& app, const std::string& path, train::TrainConfig& config);

}  // namespace nfscale::cli
