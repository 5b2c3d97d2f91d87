// cmd_predict.cpp - `nfscale predict`: logits and top-k classes of a trained or imported model for images (one file
// or a folder, with the model's evaluation transform) or a prepared NCHW batch, written as safetensors, JSON or CSV.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "nfscale/cli/command_registry.h"
#include "nfscale/cli/model_loading.h"
#include "nfscale/data/dataset.h"
#include "nfscale/data/image_codec.h"
#include "nfscale/data/transforms.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/device.h"
#include "nfscale/util/error.h"
#include "nfscale/weights/safetensors.h"

namespace nfscale::cli {
namespace {
namespace fs = std::filesystem;

struct PredictArgs {
  FromArgs from;
  std::string images;
  std::string tensor;
  int64_t res = 0;
  int64_t top_k = 5;
  int64_t batch = 64;
  std::string out;
};

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

// Images of `path` (one file, or the JPEG/PNG files of a folder sorted by name) through the eval transform:
// [N, C, R, R] float, and their names.
torch::Tensor load_images(const std::string& path, const LoadedModel& m, int64_t res, std::vector<std::string>& names) {
  require(fs::exists(path), "--images " + path + ": no such file or directory");
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path)) {
      const std::string ext = lower_ext(e.path());
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    require(!files.empty(), "--images " + path + ": the folder has no .jpg, .jpeg or .png files");
  } else {
    files.push_back(path);
  }
  data::AugmentConfig aug;  // eval fields only: resize + centre crop, normalisation
  const int64_t channels = m.model->in_channels();
  data::default_normalisation(m.data_kind.empty() ? "imagefolder" : m.data_kind, channels, aug.mean, aug.std);
  auto batch = torch::empty({static_cast<int64_t>(files.size()), channels, res, res});  // [N, C, R, R]
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string bytes = read_file(files[i].string());
    const data::Image img = data::decode_image(bytes, files[i].string());
    data::transform_example(img, aug, res, channels, /*train=*/false, 0, batch[static_cast<int64_t>(i)].data_ptr<float>());
    names.push_back(files[i].filename().string());
  }
  return batch;
}

// FILE[:NAME] of a safetensors file: NAME, else its only tensor, else its "input".
torch::Tensor load_tensor(const std::string& spec, const LoadedModel& m, std::vector<std::string>& names) {
  std::string path = spec, name;
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos && !fs::exists(spec)) path = spec.substr(0, colon), name = spec.substr(colon + 1);
  weights::SafetensorsFile f(path);
  if (name.empty()) {
    const auto all = f.names();
    require(all.size() == 1 || f.contains("input"), "--tensor " + path + ": holds " + std::to_string(all.size()) +
                                                        " tensors and none is called 'input'; pick one with " + path +
                                                        ":NAME");
    name = all.size() == 1 ? all.front() : "input";
  }
  torch::Tensor x = f.tensor(name);
  require(x.dim() == 4 && x.is_floating_point(),
          "--tensor " + path + ":" + name + ": expected a float NCHW batch [N, C, H, W], got " +
              std::string(c10::toString(x.scalar_type())) + " " + c10::str(x.sizes()));
  require(x.size(1) == m.model->in_channels(), "--tensor " + path + ":" + name + ": has " + std::to_string(x.size(1)) +
                                                   " channels but model " + m.info.name + " takes " +
                                                   std::to_string(m.model->in_channels()));
  for (int64_t i = 0; i < x.size(0); ++i) names.push_back(name + "[" + std::to_string(i) + "]");
  return x.to(torch::kFloat).contiguous();
}

void write_output(const std::string& out, const torch::Tensor& logits, const torch::Tensor& top_idx,
                  const torch::Tensor& top_prob, const std::vector<std::string>& names, const LoadedModel& m) {
  const std::string ext = lower_ext(out);
  if (ext == ".safetensors") {
    weights::write_safetensors(out, {{"logits", logits}, {"top_k_indices", top_idx}, {"top_k_probs", top_prob}},
                               {{"model", m.info.name}, {"weights", m.weights_path}});
    return;
  }
  auto L = logits.accessor<float, 2>();
  auto I = top_idx.accessor<int64_t, 2>();
  auto P = top_prob.accessor<float, 2>();
  if (ext == ".json") {
    nlohmann::json j = {{"model", m.info.name}, {"weights", m.weights_path}, {"predictions", nlohmann::json::array()}};
    for (int64_t n = 0; n < logits.size(0); ++n) {
      nlohmann::json row = {{"input", names[static_cast<size_t>(n)]}};
      std::vector<float> lg(static_cast<size_t>(logits.size(1)));
      for (int64_t k = 0; k < logits.size(1); ++k) lg[static_cast<size_t>(k)] = L[n][k];
      row["logits"] = lg;
      row["top_k"] = nlohmann::json::array();
      for (int64_t k = 0; k < top_idx.size(1); ++k) row["top_k"].push_back({{"label", I[n][k]}, {"prob", P[n][k]}});
      j["predictions"].push_back(row);
    }
    write_file_atomic(out, j.dump(2) + "\n");
    return;
  }
  if (ext == ".csv") {
    std::ostringstream s;
    s.precision(9);
    s << "input";
    for (int64_t k = 0; k < logits.size(1); ++k) s << ",logit_" << k;
    for (int64_t k = 0; k < top_idx.size(1); ++k) s << ",top" << k + 1 << "_label,top" << k + 1 << "_prob";
    s << "\n";
    for (int64_t n = 0; n < logits.size(0); ++n) {
      s << '"' << names[static_cast<size_t>(n)] << '"';
      for (int64_t k = 0; k < logits.size(1); ++k) s << ',' << L[n][k];
      for (int64_t k = 0; k < top_idx.size(1); ++k) s << ',' << I[n][k] << ',' << P[n][k];
      s << "\n";
    }
    write_file_atomic(out, s.str());
    return;
  }
  throw UserError("--out " + out + ": unknown extension; use .safetensors, .json or .csv");
}

RegisterCommand kRegister_cmd_predict(26, [](CLI::App& root) {
  auto a = std::make_shared<PredictArgs>();
  auto* app = root.add_subcommand(
      "predict",
      "Logits and top-k classes of a model for images or a prepared batch. The model comes from a run dir or a weights\n"
      "file (checkpoint, weights.pt, .safetensors in nfscale or timm names; --model/--model-json give its\n"
      "architecture when the file does not). Output by extension: .safetensors (logits, top_k_indices, top_k_probs),\n"
      ".json or .csv. See docs/weights.md.");
  app->add_option("--from", a->from.from, "Run dir of `nfscale train`, or a weights file")->required();
  add_model_source_flags(*app, a->from);
  auto* img = app->add_option("--images", a->images, "One image or a folder of JPEG/PNG files (evaluation transform: "
                                                     "resize + centre crop to --res, the run's normalisation)");
  auto* ten = app->add_option("--tensor", a->tensor, "A prepared float NCHW batch: FILE.safetensors[:NAME] (default "
                                                     "NAME: the only tensor, or 'input')");
  img->excludes(ten);
  app->add_option("--res", a->res, "Image resolution (default: the run's eval resolution, else the model's test "
                                   "resolution)")->check(CLI::PositiveNumber);
  app->add_option("--top-k", a->top_k, "Classes per input in the top-k lists")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--batch", a->batch, "Inputs per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  app->add_option("--out", a->out, "Output file: .safetensors, .json or .csv")->required();
  app->callback([a] {
    require(!a->images.empty() || !a->tensor.empty(), "predict: pass --images PATH or --tensor FILE.safetensors[:NAME]");
    require(a->tensor.empty() || a->res == 0, "--res resizes images; a --tensor batch is used as it is: drop --res");
    LoadedModel m = load_model(a->from);
    std::vector<std::string> names;
    const int64_t res = a->res > 0 ? a->res : (m.eval_resolution > 0 ? m.eval_resolution : 32);
    torch::Tensor x = a->images.empty() ? load_tensor(a->tensor, m, names) : load_images(a->images, m, res, names);
    const auto device = module_device(*m.model);
    std::vector<torch::Tensor> parts;
    {
      torch::NoGradGuard no_grad;
      for (int64_t i = 0; i < x.size(0); i += a->batch)
        parts.push_back(m.model->forward(x.slice(0, i, i + a->batch).to(device)).to(torch::kCPU, torch::kFloat));
    }
    const torch::Tensor logits = torch::cat(parts).contiguous();  // [N, K]
    const int64_t k = std::min<int64_t>(a->top_k, logits.size(1));
    auto [top_prob, top_idx] = torch::softmax(logits, 1).topk(k, 1);  // [N, k] each
    write_output(a->out, logits, top_idx.contiguous(), top_prob.contiguous(), names, m);
    std::fprintf(stderr, "[predict] %lld inputs -> %s (%s, %s names)\n", static_cast<long long>(logits.size(0)),
                 a->out.c_str(), m.info.name.c_str(), m.convention.c_str());
  });
});

}  // namespace
}  // namespace nfscale::cli
