// safetensors.cpp - safetensors reader (mmap, every header field checked) and atomic writer (see safetensors.h).
#include "nfscale/weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <torch/torch.h>

#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp maps little-endian data straight into tensors: a big-endian host needs byte swapping here"
#endif

namespace nfscale::weights {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit (100 MB)

struct DtypeName {
  at::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {at::kDouble, "F64"}, {at::kFloat, "F32"}, {at::kHalf, "F16"}, {at::kBFloat16, "BF16"}, {at::kLong, "I64"},
    {at::kInt, "I32"},    {at::kShort, "I16"}, {at::kChar, "I8"},  {at::kByte, "U8"},       {at::kBool, "BOOL"},
};

std::string known_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}


}  // namespace

torch::Tensor WeightSet::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return t.tensor;
  return {};
}

std::string safetensors_dtype_name(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw UserError(std::string("safetensors: dtype ") + c10::toString(t) + " cannot be stored; supported: " +
                  known_dtypes() + " (convert the tensor first)");
}

at::ScalarType safetensors_dtype(const std::string& name, const std::string& origin) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw UserError(origin + ": unknown dtype '" + name + "'; nfscale reads " + known_dtypes());
}

// The read-only, copy-on-write mapping of the whole file; unmapped when the last tensor sharing it goes.
struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr && size) ::munmap(addr, size);
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(std::make_shared<Mapping>()) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError(path + ": cannot open (" + std::strerror(errno) + "); check the path");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError(path + ": not a regular file; pass a .safetensors file");
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size > 0) {
    // PROT_WRITE on a private mapping: tensors may be modified in place without touching the file.
    void* addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      ::close(fd);
      throw UserError(path + ": cannot map (" + std::strerror(errno) + ")");
    }
    map_->addr = addr;
    map_->size = file_size;
  }
  ::close(fd);
  const auto* bytes = static_cast<const uint8_t*>(map_->addr);
  const std::string bad = path + ": not a valid safetensors file: ";
  if (file_size < 8)
    throw UserError(bad + "truncated (" + std::to_string(file_size) + " bytes; the 8-byte header length is missing)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes, 8);  // little-endian u64
  if (header_len > kMaxHeaderBytes)
    throw UserError(bad + "header length " + std::to_string(header_len) + " exceeds the format's 100 MB limit");
  if (8 + header_len > file_size)
    throw UserError(bad + "truncated: the header says " + std::to_string(header_len) + " bytes but the file has " +
                    std::to_string(file_size - 8) + " after the length field");
  const size_t data_size = file_size - 8 - header_len;
  data_ = bytes + 8 + header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes) + 8,
                                   reinterpret_cast<const char*>(bytes) + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(bad + "the header is not JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw UserError(bad + "the header is not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) throw UserError(bad + "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw UserError(bad + "__metadata__ field '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = bad + "tensor '" + key + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw UserError(where + "needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) throw UserError(where + "dtype is not a string");
    Entry e;
    e.name = key;
    e.dtype = safetensors_dtype(v["dtype"].get<std::string>(), path + ": tensor '" + key + "'");
    const auto& shape = v["shape"];
    const auto& offsets = v["data_offsets"];
    if (!shape.is_array()) throw UserError(where + "shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) throw UserError(where + "shape " + shape.dump() + " has a non-integer or negative extent");
      e.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
    }
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw UserError(where + "data_offsets must be [begin, end], got " + offsets.dump());
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    const uint64_t expect = numel * c10::elementSize(e.dtype);
    if (e.end < e.begin || e.end - e.begin != expect)
      throw UserError(where + "data_offsets " + offsets.dump() + " span " + std::to_string(e.end - e.begin) +
                      " bytes but " + v["dtype"].get<std::string>() + " " + shape.dump() + " needs " +
                      std::to_string(expect) + " (the header lies about its offsets)");
    if (e.end > data_size)
      throw UserError(where + "data_offsets " + offsets.dump() + " run past the end of the data (" +
                      std::to_string(data_size) + " bytes): the file is truncated or the header lies");
    entries_.push_back(std::move(e));
  }
  // The data must be covered exactly: tensors back to back from 0 to the end, no overlap, no gap.
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t pos = 0;
  for (const auto& e : entries_) {
    if (e.begin != pos)
      throw UserError(bad + "tensor '" + e.name + "' starts at byte " + std::to_string(e.begin) + " of the data, expected " +
                      std::to_string(pos) + (e.begin < pos ? " (it overlaps the tensor before it)" : " (a gap)"));
    pos = e.end;
  }
  if (pos != data_size)
    throw UserError(bad + std::to_string(data_size - pos) + " bytes after the last tensor that no tensor owns");
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
  if (it == entries_.end()) {
    std::string have;
    for (const auto& e : entries_) have += (have.empty() ? "" : ", ") + e.name;
    throw UserError(path_ + ": has no tensor '" + name + "'; it holds: " + (have.empty() ? "(none)" : have));
  }
  const auto opts = torch::TensorOptions().dtype(it->dtype);
  if (it->end == it->begin) return torch::empty(it->shape, opts);
  auto* ptr = const_cast<uint8_t*>(data_ + it->begin);
  const auto addr = reinterpret_cast<uintptr_t>(ptr);
  if (addr % c10::elementSize(it->dtype) != 0) {
    // The format does not align tensors; an unaligned one is copied into fresh (aligned) memory.
    auto out = torch::empty(it->shape, opts);
    std::memcpy(out.data_ptr(), ptr, it->end - it->begin);
    return out;
  }
  std::shared_ptr<Mapping> keep = map_;
  return torch::from_blob(ptr, it->shape, [keep](void*) mutable { keep.reset(); }, opts);
}

WeightSet SafetensorsFile::read_all() const {
  WeightSet set;
  set.metadata = metadata_;
  for (const auto& e : entries_) set.tensors.push_back({e.name, tensor(e.name)});
  return set;
}

std::vector<NamedTensor> read_safetensors(const std::string& path) { return SafetensorsFile(path).read_all().tensors; }

std::string safetensors_bytes(const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& nt : tensors) {
    require(!nt.name.empty(), "safetensors: a tensor has an empty name; every tensor needs a unique name");
    require(nt.name != "__metadata__", "safetensors: '__metadata__' is reserved and cannot name a tensor");
    require(seen.insert(nt.name).second, "safetensors: tensor name '" + nt.name + "' appears twice");
    require(nt.tensor.defined(), "safetensors: tensor '" + nt.name + "' is undefined");
    auto t = nt.tensor.detach().to(torch::kCPU).contiguous();
    const std::string dtype = safetensors_dtype_name(t.scalar_type());
    const uint64_t n = t.numel() * t.element_size();
    header[nt.name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    cpu.push_back(t);
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  std::string out;
  out.reserve(8 + head.size() + offset);
  const uint64_t len = head.size();
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += head;
  for (const auto& t : cpu) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  write_file_atomic(path, safetensors_bytes(tensors, metadata));
}

}  // namespace nfscale::weights
