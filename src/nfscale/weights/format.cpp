// format.cpp - the torch-archive and safetensors implementations of WeightFormat, and format detection.
#include "nfscale/weights/format.h"

#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::weights {
namespace {

std::string first_bytes(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot open; check the path");
  std::string out(n, '\0');
  in.read(out.data(), static_cast<std::streamsize>(n));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void write_flat_archive(torch::serialize::OutputArchive& ar, const WeightSet& set) {
  for (const auto& nt : set.tensors) ar.write(nt.name, nt.tensor.detach());
  if (!set.metadata.empty()) {
    torch::serialize::OutputArchive meta;
    for (const auto& [k, v] : set.metadata) meta.write(k, c10::IValue(v));
    ar.write("__metadata__", meta);
  }
}

WeightSet read_flat_archive(torch::serialize::InputArchive& ar) {
  WeightSet set;
  for (const auto& key : ar.keys()) {
    if (key == "__metadata__") {
      torch::serialize::InputArchive meta;
      ar.read(key, meta);
      for (const auto& k : meta.keys()) {
        c10::IValue v;
        if (meta.try_read(k, v) && v.isString()) set.metadata[k] = v.toStringRef();
      }
      continue;
    }
    torch::Tensor t;
    if (ar.try_read(key, t, /*is_buffer=*/false) || ar.try_read(key, t, /*is_buffer=*/true))
      set.tensors.push_back({key, t});
  }
  return set;
}

bool TorchArchiveFormat::recognises(const std::string& path) const {
  return first_bytes(path, 4) == std::string("PK\x03\x04", 4);  // torch::serialize writes a zip archive
}

WeightSet TorchArchiveFormat::read(const std::string& path) const {
  const std::string bytes = read_file(path);
  torch::serialize::InputArchive root;
  try {
    root.load_from(bytes.data(), bytes.size());
    torch::serialize::InputArchive nested;
    if (root.try_read("model", nested)) return read_flat_archive(nested);
    return read_flat_archive(root);
  } catch (const c10::Error& e) {
    throw UserError(path + ": not a readable nfscale checkpoint or weights file (" +
                    std::string(e.what_without_backtrace()) + "); point to another file");
  }
}

void TorchArchiveFormat::write(const std::string& path, const WeightSet& set) const {
  torch::serialize::OutputArchive ar;
  write_flat_archive(ar, set);
  std::ostringstream out;
  ar.save_to(out);
  write_file_atomic(path, out.str());
}

bool SafetensorsFormat::recognises(const std::string& path) const {
  const std::string head = first_bytes(path, 9);
  if (head.size() < 9) return ends_with(path, ".safetensors");
  return head[8] == '{' || ends_with(path, ".safetensors");  // header length, then the JSON object
}

WeightSet SafetensorsFormat::read(const std::string& path) const { return SafetensorsFile(path).read_all(); }

void SafetensorsFormat::write(const std::string& path, const WeightSet& set) const {
  write_safetensors(path, set.tensors, set.metadata);
}

const WeightFormat& weight_format(const std::string& name) {
  static const TorchArchiveFormat torch_format;
  static const SafetensorsFormat safetensors_format;
  if (name == "torch") return torch_format;
  if (name == "safetensors") return safetensors_format;
  throw UserError("--format " + name + ": unknown weights format; valid choices: safetensors, torch");
}

const WeightFormat& weight_format_of(const std::string& path) {
  for (const char* name : {"torch", "safetensors"}) {
    const WeightFormat& f = weight_format(name);
    if (f.recognises(path)) return f;
  }
  throw UserError(path + ": not an nfscale checkpoint or weights file: neither a torch archive (checkpoint.pt, "
                  "weights.pt) nor a safetensors file");
}

WeightSet read_weights(const std::string& path) { return weight_format_of(path).read(path); }

}  // namespace nfscale::weights
