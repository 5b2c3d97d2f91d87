// safetensors.h - the safetensors file format: an 8-byte little-endian header length, a JSON header (dtype, shape,
// data_offsets per tensor, optional "__metadata__" of strings), then raw little-endian tensor data. Read by mmap,
// written atomically.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nfscale::weights {

// One tensor with its name, as stored in a weights file.
struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

// String key/value pairs stored beside the tensors (safetensors "__metadata__").
using Metadata = std::map<std::string, std::string>;

// A tensor set with its metadata: what every weights format reads and writes (format.h).
struct WeightSet {
  std::vector<NamedTensor> tensors;
  Metadata metadata;
  // The tensor called `name`, or an undefined tensor.
  torch::Tensor find(const std::string& name) const;
};

// Supported dtypes and their safetensors names: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
std::string safetensors_dtype_name(at::ScalarType t);  // UserError for a dtype the format cannot hold
at::ScalarType safetensors_dtype(const std::string& name, const std::string& origin);  // UserError if unknown

// An opened safetensors file: the header parsed and checked, the data mapped read-only (copy on write).
// Tensors returned share the mapping (no copy) when their offset is aligned for the dtype and keep it alive.
class SafetensorsFile {
 public:
  // Throws UserError naming `path` for: a file that cannot be opened, is shorter than its header says (truncated),
  // a header that is not JSON or lacks dtype/shape/data_offsets, an unknown dtype, offsets outside the data or whose
  // length disagrees with dtype x shape, overlapping tensors or gaps in the data.
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return metadata_; }
  std::vector<std::string> names() const;  // in file order (by data offset)
  bool contains(const std::string& name) const;
  // The tensor (CPU); UserError listing the names in the file if absent.
  torch::Tensor tensor(const std::string& name) const;
  WeightSet read_all() const;

 private:
  struct Entry {
    std::string name;
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  // byte offsets into the data section
  };
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> map_;
  std::vector<Entry> entries_;
  Metadata metadata_;
  const uint8_t* data_ = nullptr;  // start of the data section
};

// Every tensor of `path` (CPU), in file order.
std::vector<NamedTensor> read_safetensors(const std::string& path);

// Writes `tensors` (any device; copied to CPU, contiguous) with `metadata` to `path` atomically: nothing half-written
// survives a crash, and `path` is untouched when this throws. Names must be unique and non-empty (UserError).
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const Metadata& metadata = {});

// The file's bytes as write_safetensors would write them (header padded with spaces to a multiple of 8).
std::string safetensors_bytes(const std::vector<NamedTensor>& tensors, const Metadata& metadata = {});

}  // namespace nfscale::weights
