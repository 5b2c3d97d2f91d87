// format.h - weights file formats behind one interface: the torch archive (nfscale's checkpoint.pt / weights.pt,
// torch::serialize) and safetensors. Both hold a flat WeightSet (dotted names -> tensors) plus string metadata.
#pragma once
#include <string>
#include <vector>

#include "nfscale/weights/safetensors.h"

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace nfscale::weights {

class WeightFormat {
 public:
  virtual ~WeightFormat() = default;
  virtual std::string name() const = 0;  // "torch" | "safetensors"
  // Whether the file at `path` is in this format (by its first bytes).
  virtual bool recognises(const std::string& path) const = 0;
  // Reads every tensor (CPU) and the metadata; UserError naming the file when it is unreadable.
  virtual WeightSet read(const std::string& path) const = 0;
  // Writes atomically (nothing half-written on a crash or error).
  virtual void write(const std::string& path, const WeightSet& set) const = 0;
};

class TorchArchiveFormat : public WeightFormat {
 public:
  std::string name() const override { return "torch"; }
  bool recognises(const std::string& path) const override;
  // A checkpoint's weights are nested under "model"; a weights file holds them at the top level: both are read.
  WeightSet read(const std::string& path) const override;
  void write(const std::string& path, const WeightSet& set) const override;
};

class SafetensorsFormat : public WeightFormat {
 public:
  std::string name() const override { return "safetensors"; }
  bool recognises(const std::string& path) const override;
  WeightSet read(const std::string& path) const override;
  void write(const std::string& path, const WeightSet& set) const override;
};

// "torch" or "safetensors"; UserError listing both otherwise.
const WeightFormat& weight_format(const std::string& name);
// The format of an existing file, by content; UserError naming the file if it is neither.
const WeightFormat& weight_format_of(const std::string& path);
// Reads a weights file of either format.
WeightSet read_weights(const std::string& path);

// The flat layout inside a torch archive (also a checkpoint's "model" entry): one entry per tensor under its dotted
// name, metadata as strings in a nested "__metadata__" archive.
void write_flat_archive(torch::serialize::OutputArchive& archive, const WeightSet& set);
WeightSet read_flat_archive(torch::serialize::InputArchive& archive);

}  // namespace nfscale::weights
