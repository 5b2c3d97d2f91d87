// checkpoint.cpp - serialisation of training state through torch::serialize archives + atomic file replacement.
#include "nfscale/train/checkpoint.h"

#include <sstream>

#include <torch/torch.h>

#include "nfscale/optim/ema.h"
#include "nfscale/optim/optimizer.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/models/classifier.h"
#include "nfscale/models/layers.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"

namespace nfscale::train {

namespace {
// 1: model, optimizer, state (+ ema). 2: adds "model_meta" (the model's WS form and activation, as strings).
constexpr int64_t kFormatVersion = 2;

torch::Tensor scalar_i64(int64_t v) { return torch::tensor({v}, torch::kInt64); }
torch::Tensor scalar_f64(double v) { return torch::tensor({v}, torch::kFloat64); }

std::string archive_bytes(torch::serialize::OutputArchive& archive) {
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
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

// The model's tensors under their own dotted names (the "nfscale" convention), as a weights file holds them.
weights::WeightSet model_set(models::ClassifierImpl& model, const weights::Metadata& meta = {}) {
  return weights::export_weights(model, "nfscale", meta);
}
std::string model_ws_form(models::ClassifierImpl& model) { return models::ws_form_name(models::ws_form_of(model)); }

std::string read_model_meta(torch::serialize::InputArchive& root, const std::string& key) {
  torch::serialize::InputArchive meta;
  c10::IValue v;
  if (root.try_read("model_meta", meta) && meta.try_read(key, v) && v.isString()) return v.toStringRef();
  return "";
}
}  // namespace

int64_t checkpoint_format_version() { return kFormatVersion; }

int64_t check_checkpoint_format(const std::string& path, torch::serialize::InputArchive& state) {
  torch::Tensor t;
  if (!state.try_read("format", t))
    throw UserError(path + ": has no format version, so it is not an nfscale checkpoint; delete it to start over");
  const int64_t v = t.item<int64_t>();
  if (v < 1 || v > kFormatVersion)
    throw UserError(path + ": checkpoint format version " + std::to_string(v) + " but this nfscale reads versions 1.." +
                    std::to_string(kFormatVersion) + (v > kFormatVersion ? " (written by a newer nfscale: update it)"
                                                                         : " (corrupt): delete it to start over"));
  return v;
}

void save_checkpoint(const std::string& path, models::ClassifierImpl& model, const optim::Optimizer& optimizer,
                     const optim::Ema* ema, const LoopState& s) {
  torch::serialize::OutputArchive root;
  torch::serialize::OutputArchive model_ar, optim_ar, state_ar, meta_ar;
  weights::write_flat_archive(model_ar, model_set(model, {{"names", "nfscale"}, {"producer", "nfscale"}}));
  meta_ar.write("ws_form", c10::IValue(model_ws_form(model)));
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
  root.write("model_meta", meta_ar);
  if (ema) {
    torch::serialize::OutputArchive ema_ar;
    ema->save(ema_ar);
    root.write("ema", ema_ar);
  }
  write_file_atomic(path, archive_bytes(root));
}

LoopState load_checkpoint(const std::string& path, models::ClassifierImpl& model, optim::Optimizer& optimizer,
                          optim::Ema* ema) {
  torch::serialize::InputArchive root;
  load_archive(path, root);
  torch::serialize::InputArchive model_ar, optim_ar, state_ar;
  LoopState s;
  try {
    root.read("model", model_ar);
    root.read("optimizer", optim_ar);
    root.read("state", state_ar);
    const int64_t version = check_checkpoint_format(path, state_ar);
    const std::string ws_form = version >= 2 ? read_model_meta(root, "ws_form") : "deepmind";
    require(ws_form == model_ws_form(model),
            path + ": checkpoint was trained with the " + ws_form + " weight standardisation but the run's config says " +
                model_ws_form(model) + "; set ws_form to " + ws_form + " in config.json (or --ws-form)");
    weights::import_weights(model, weights::read_flat_archive(model_ar), {"nfscale", true}, path);
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

int64_t load_weights(const std::string& path, models::ClassifierImpl& model, const std::string& skip_prefix) {
  weights::ImportOptions o;
  o.strict = skip_prefix.empty();  // not strict: the classifier may be of another size (fine-tuning replaces it)
  return weights::import_weights(model, weights::read_weights(path), o, path).loaded;
}

void save_weights(const std::string& path, models::ClassifierImpl& model) {
  weights::weight_format("torch").write(path, model_set(model, {{"ws_form", model_ws_form(model)}, {"names", "nfscale"}}));
}

}  // namespace nfscale::train
