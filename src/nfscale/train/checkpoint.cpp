// checkpoint.cpp - serialisation of training state through torch::serialize archives + atomic file replacement.
#include "nfscale/train/checkpoint.h"

#include <sstream>

#include <torch/torch.h>

#include "nfscale/models/classifier.h"
#include "nfscale/optim/ema.h"
#include "nfscale/optim/optimizer.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::train {

namespace {
constexpr int64_t kFormatVersion = 1;

torch::Tensor scalar_i64(int64_t v) { return torch::tensor({v}, torch::kInt64); }
torch::Tensor scalar_f64(double v) { return torch::tensor({v}, torch::kFloat64); }

std::string archive_bytes(torch::serialize::OutputArchive& archive) {
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

// Weights are stored flat under their dotted names ("stages.0.0.conv1.weight"), so a weights file and the
// "model" entry of a checkpoint have the same layout and can be read by name with skips.
void write_flat(torch::serialize::OutputArchive& ar, torch::nn::Module& model) {
  for (auto& item : model.named_parameters(true)) ar.write(item.key(), item.value());
  for (auto& item : model.named_buffers(true)) ar.write(item.key(), item.value(), /*is_buffer=*/true);
}

void load_archive(const std::string& path, torch::serialize::InputArchive& archive) {
  std::string bytes = read_file(path);
  try {
    archive.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    throw UserError(path + ": not a readable nfscale checkpoint (" + std::string(e.what_without_backtrace()) +
                    "); delete it to start over, or point to another file");
  }
}
int64_t read_flat(const std::string& path, torch::serialize::InputArchive& ar, torch::nn::Module& model,
                  const std::string& skip_prefix) {
  torch::NoGradGuard no_grad;
  int64_t loaded = 0;
  auto load_named = [&](const std::string& name, torch::Tensor& t, bool is_buffer) {
    if (!skip_prefix.empty() && name.rfind(skip_prefix, 0) == 0) return;
    torch::Tensor src;
    if (!ar.try_read(name, src, is_buffer))
      throw UserError(path + ": has no tensor '" + name + "' - it was written for a different model");
    if (src.sizes() != t.sizes()) {  // e.g. a ViT position embedding of another resolution: resampled to fit
      if (auto* classifier = dynamic_cast<models::ClassifierImpl*>(&model)) src = classifier->adapt_loaded(name, src);
    }
    if (src.sizes() != t.sizes())
      throw UserError(path + ": tensor '" + name + "' has shape " + c10::str(src.sizes()) + " but the model expects " +
                      c10::str(t.sizes()) + " - it was written for a different model");
    t.copy_(src);
    ++loaded;
  };
  for (auto& item : model.named_parameters(true)) load_named(item.key(), item.value(), false);
  for (auto& item : model.named_buffers(true)) load_named(item.key(), item.value(), true);
  return loaded;
}
}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& model, const optim::Optimizer& optimizer,
                     const optim::Ema* ema, const LoopState& s) {
  torch::serialize::OutputArchive root;
  torch::serialize::OutputArchive model_ar, optim_ar, state_ar;
  write_flat(model_ar, model);
  optimizer.save(optim_ar);
  optim_ar.write("kind", c10::IValue(optimizer.kind()));
  state_ar.write("format", scalar_i64(kFormatVersion));
  state_ar.write("step", scalar_i64(s.step));
  state_ar.write("position", scalar_i64(s.position));
  state_ar.write("examples_seen", scalar_i64(s.examples_seen));
  state_ar.write("seconds", scalar_f64(s.seconds));
  state_ar.write("total_steps", scalar_i64(s.total_steps));
  root.write("model", model_ar);
  root.write("optimizer", optim_ar);
  root.write("state", state_ar);
  if (ema) {
    torch::serialize::OutputArchive ema_ar;
    ema->save(ema_ar);
    root.write("ema", ema_ar);
  }
  write_file_atomic(path, archive_bytes(root));
}

LoopState load_checkpoint(const std::string& path, torch::nn::Module& model, optim::Optimizer& optimizer,
                          optim::Ema* ema) {
  torch::serialize::InputArchive root;
  load_archive(path, root);
  torch::serialize::InputArchive model_ar, optim_ar, state_ar;
  LoopState s;
  try {
    root.read("model", model_ar);
    root.read("optimizer", optim_ar);
    root.read("state", state_ar);
    read_flat(path, model_ar, model, "");
    c10::IValue kind;  // absent in checkpoints written before the Optimizer seam: those were all SGD+AGC
    const std::string saved_kind = optim_ar.try_read("kind", kind) && kind.isString() ? kind.toStringRef() : "sgd_agc";
    require(saved_kind == optimizer.kind(),
            path + ": field 'optimizer.kind' is '" + saved_kind + "' but this run uses '" + optimizer.kind() +
                "'; resume with the original --optimizer, or start a new --run-dir");
    optimizer.load(optim_ar);
    if (ema) {
      torch::serialize::InputArchive ema_ar;
      root.read("ema", ema_ar);
      ema->load(ema_ar);
    }
    auto get = [&](const char* key) {
      torch::Tensor t;
      state_ar.read(key, t);
      return t;
    };
    s.step = get("step").item<int64_t>();
    s.position = get("position").item<int64_t>();
    s.examples_seen = get("examples_seen").item<int64_t>();
    s.seconds = get("seconds").item<double>();
    s.total_steps = get("total_steps").item<int64_t>();
  } catch (const c10::Error& e) {
    throw UserError(path + ": checkpoint does not match this model/optimiser (" +
                    std::string(e.what_without_backtrace()) + "); was it written with other settings?");
  }
  return s;
}

int64_t load_weights(const std::string& path, torch::nn::Module& model, const std::string& skip_prefix) {
  torch::serialize::InputArchive root;
  load_archive(path, root);
  // A checkpoint nests the weights under "model"; a weights file holds them at the top level.
  torch::serialize::InputArchive nested;
  if (root.try_read("model", nested)) return read_flat(path, nested, model, skip_prefix);
  return read_flat(path, root, model, skip_prefix);
}

void save_weights(const std::string& path, torch::nn::Module& model) {
  torch::serialize::OutputArchive ar;
  write_flat(ar, model);
  write_file_atomic(path, archive_bytes(ar));
}

}  // namespace nfscale::train
