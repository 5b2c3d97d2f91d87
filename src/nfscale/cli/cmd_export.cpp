// cmd_export.cpp - `nfscale export`: a run's weights as a safetensors (or torch) file, in timm's or nfscale's names.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/model_loading.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"

namespace nfscale::cli {
namespace {

struct ExportArgs {
  FromArgs from;
  std::string format = "safetensors";
  std::string names = "timm";
  std::string out;
};

RegisterCommand kRegister_cmd_export(27, [](CLI::App& root) {
  auto a = std::make_shared<ExportArgs>();
  auto* app = root.add_subcommand(
      "export",
      "Export a run's weights for other tools: safetensors (or a torch archive) in timm's names (dm_nfnet layout) or\n"
      "nfscale's. The file's metadata records the model, classes, channels, activation and WS form, so `--from FILE`\n"
      "rebuilds the same model. Written atomically. See docs/weights.md.");
  app->add_option("--run-dir", a->from.from, "Run directory written by `nfscale train` / `finetune`")->required();
  app->add_flag("--ema", a->from.ema, "Export the EMA weights (weights_ema.pt)");
  app->add_option("--format", a->format, "safetensors or torch")->capture_default_str()
      ->check(CLI::IsMember({"safetensors", "torch"}));
  app->add_option("--names", a->names, "timm or nfscale")->capture_default_str()
      ->check(CLI::IsMember({"timm", "nfscale"}));
  app->add_option("--out", a->out, "Output file")->required();
  app->callback([a] {
    LoadedModel m = load_model(a->from);
    weights::Metadata meta = weights::model_metadata(*m.model, m.config, a->names);
    if (!m.data_kind.empty()) meta["data"] = m.data_kind;
    const weights::WeightSet set = weights::export_weights(*m.model, a->names, meta);
    weights::weight_format(a->format).write(a->out, set);
    std::fprintf(stderr, "[export] %s: %zu tensors of %s (%s names, %s WS, %s) from %s\n", a->out.c_str(),
                 set.tensors.size(), m.info.name.c_str(), a->names.c_str(), m.config.ws_form.c_str(),
                 m.config.activation.c_str(), m.weights_path.c_str());
  });
});

}  // namespace
}  // namespace nfscale::cli
