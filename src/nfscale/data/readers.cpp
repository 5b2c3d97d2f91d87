// readers.cpp - in-memory readers: IDX (MNIST / Fashion-MNIST, optionally gzip), CIFAR-10/100 binary and sklearn
// digits CSV; all validated at open time (magic, sizes, label ranges, row format) with UserErrors naming the file.
#include "nfscale/data/readers.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "nfscale/data/memory_dataset.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

namespace fs = std::filesystem;

namespace nfscale::data {
namespace {

uint32_t be32(const std::string& b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) | (uint32_t(uint8_t(b[at + 2])) << 8) |
         uint32_t(uint8_t(b[at + 3]));
}

// `base` or `base.gz`, whichever exists.
std::string find_plain_or_gz(const std::string& dir, const std::string& base) {
  fs::path p = fs::path(dir) / base;
  if (fs::exists(p)) return p.string();
  if (fs::exists(p.string() + ".gz")) return p.string() + ".gz";
  throw UserError(p.string() + "[.gz]: file not found; point the data spec at the directory holding the IDX files");
}

struct IdxArray {
  std::vector<uint32_t> dims;
  std::string data;  // the payload after the header
};

IdxArray read_idx(const std::string& path, int expected_dims) {
  std::string b = read_file_maybe_gzip(path);
  require(b.size() >= 4, path + ": too short for an IDX header (" + std::to_string(b.size()) + " bytes)");
  const uint32_t magic = be32(b, 0);
  const uint32_t want = 0x800u | uint32_t(expected_dims);
  require(magic == want, path + ": wrong IDX magic 0x" + [&] {
    std::ostringstream s;
    s << std::hex << magic;
    return s.str();
  }() + " (expected 0x" + (expected_dims == 3 ? std::string("803") : std::string("801")) +
                             ": unsigned bytes, " + std::to_string(expected_dims) +
                             " dimensions); is this the right file?");
  const size_t header = 4 + 4 * size_t(expected_dims);
  require(b.size() >= header, path + ": truncated IDX header");
  IdxArray a;
  size_t count = 1;
  for (int d = 0; d < expected_dims; ++d) {
    a.dims.push_back(be32(b, 4 + 4 * size_t(d)));
    count *= a.dims.back();
  }
  require(b.size() - header == count, path + ": wrong size: the header promises " + std::to_string(count) +
                                          " bytes of data but the file holds " + std::to_string(b.size() - header) +
                                          " (truncated or corrupt download; fetch the file again)");
  a.data = b.substr(header);
  return a;
}


}  // namespace

std::string read_file_maybe_gzip(const std::string& path) {
  require(fs::is_regular_file(path), path + ": file not found or not a regular file; check the data path");
  std::string raw = read_file(path);
  if (raw.size() < 2 || uint8_t(raw[0]) != 0x1F || uint8_t(raw[1]) != 0x8B) return raw;
  z_stream z{};
  require(inflateInit2(&z, 15 + 32) == Z_OK, path + ": zlib initialisation failed");
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  char chunk[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      std::string msg = z.msg ? z.msg : (rc == Z_BUF_ERROR ? "unexpected end of compressed data" : "inflate error");
      inflateEnd(&z);
      throw UserError(path + ": corrupt or truncated gzip data (" + msg + "); fetch the file again");
    }
    out.append(chunk, sizeof chunk - z.avail_out);
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      throw UserError(path + ": truncated gzip data (stream ends early); fetch the file again");
    }
  }
  inflateEnd(&z);
  return out;
}

std::shared_ptr<Dataset> open_idx_files(const std::string& images_path, const std::string& labels_path,
                                        int64_t num_classes, bool skip_bad) {
  IdxArray images = read_idx(images_path, 3);
  IdxArray labels = read_idx(labels_path, 1);
  const int64_t n = images.dims[0], h = images.dims[1], w = images.dims[2];
  require(labels.dims[0] == images.dims[0], labels_path + ": holds " + std::to_string(labels.dims[0]) +
                                                " labels but " + images_path + " holds " + std::to_string(n) +
                                                " images; the two files must come from the same split");
  std::vector<int64_t> lab;
  std::vector<uint8_t> pix;
  int64_t classes = num_classes;
  if (classes <= 0) {
    classes = 0;
    for (char c : labels.data) classes = std::max<int64_t>(classes, uint8_t(c) + 1);
  }
  int64_t skipped = 0;
  const size_t per = static_cast<size_t>(h * w);
  pix.reserve(images.data.size());
  for (int64_t i = 0; i < n; ++i) {
    int64_t y = uint8_t(labels.data[static_cast<size_t>(i)]);
    if (y >= classes) {
      require(skip_bad, labels_path + ": label " + std::to_string(y) + " of example " + std::to_string(i) +
                            " is out of range [0, " + std::to_string(classes) +
                            "); fix the file or set skip_bad to drop such examples");
      ++skipped;
      continue;
    }
    lab.push_back(y);
    pix.insert(pix.end(), images.data.begin() + static_cast<std::ptrdiff_t>(i * per),
               images.data.begin() + static_cast<std::ptrdiff_t>((i + 1) * per));
  }
  std::string desc = "IDX " + images_path + ": " + std::to_string(lab.size()) + " images 1x" + std::to_string(h) +
                     "x" + std::to_string(w) + ", " + std::to_string(classes) + " classes";
  if (skipped) desc += ", " + std::to_string(skipped) + " skipped (bad label)";
  return std::make_shared<MemoryDataset>(std::move(pix), std::move(lab), 1, h, w, classes, desc, skipped);
}

std::shared_ptr<Dataset> open_idx(const DataSpec& spec, int64_t num_classes) {
  const std::string prefix = spec.split == "train" ? "train" : "t10k";
  require(fs::is_directory(spec.path), spec.path + ": not a directory; give the directory holding " + prefix +
                                           "-images-idx3-ubyte[.gz] and " + prefix + "-labels-idx1-ubyte[.gz]");
  return open_idx_files(find_plain_or_gz(spec.path, prefix + "-images-idx3-ubyte"),
                        find_plain_or_gz(spec.path, prefix + "-labels-idx1-ubyte"), num_classes, spec.skip_bad);
}

std::shared_ptr<Dataset> open_cifar(const DataSpec& spec, bool cifar100) {
  fs::path dir = spec.path;
  const char* sub = cifar100 ? "cifar-100-binary" : "cifar-10-batches-bin";
  if (!fs::exists(dir / (cifar100 ? "train.bin" : "data_batch_1.bin")) && fs::is_directory(dir / sub)) dir /= sub;
  std::vector<std::string> files;
  if (cifar100) files = {spec.split == "train" ? "train.bin" : "test.bin"};
  else if (spec.split == "train") files = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                           "data_batch_4.bin", "data_batch_5.bin"};
  else files = {"test_batch.bin"};
  const size_t label_bytes = cifar100 ? 2 : 1, record = label_bytes + 3072;
  const int64_t classes = cifar100 ? 100 : 10;
  std::vector<uint8_t> pix;
  std::vector<int64_t> lab;
  int64_t skipped = 0;
  for (const auto& f : files) {
    std::string path = (dir / f).string();
    require(fs::is_regular_file(path), path + ": file not found; point the data spec at the CIFAR binary directory");
    std::string b = read_file(path);
    require(!b.empty() && b.size() % record == 0,
            path + ": size " + std::to_string(b.size()) + " is not a positive multiple of the " +
                std::to_string(record) + "-byte record (truncated or not the binary version); fetch it again");
    for (size_t r = 0; r < b.size() / record; ++r) {
      const size_t at = r * record;
      int64_t y = uint8_t(b[at + label_bytes - 1]);  // the fine label for CIFAR-100
      if (y >= classes) {
        require(spec.skip_bad, path + ": label " + std::to_string(y) + " of record " + std::to_string(r) +
                                   " is out of range [0, " + std::to_string(classes) +
                                   "); fix the file or set skip_bad to drop such records");
        ++skipped;
        continue;
      }
      lab.push_back(y);
      pix.insert(pix.end(), b.begin() + static_cast<std::ptrdiff_t>(at + label_bytes),
                 b.begin() + static_cast<std::ptrdiff_t>(at + record));
    }
  }
  std::string desc = std::string(cifar100 ? "CIFAR-100 " : "CIFAR-10 ") + spec.split + " " + dir.string() + ": " +
                     std::to_string(lab.size()) + " images 3x32x32, " + std::to_string(classes) + " classes";
  if (skipped) desc += ", " + std::to_string(skipped) + " skipped (bad label)";
  return std::make_shared<MemoryDataset>(std::move(pix), std::move(lab), 3, 32, 32, classes, desc, skipped);
}

std::shared_ptr<Dataset> open_digits(const DataSpec& spec) {
  const std::string path = spec.path.empty() ? std::string(kDigitsCsv) : spec.path;
  std::string text = read_file_maybe_gzip(path);
  std::vector<std::vector<uint8_t>> rows;
  std::vector<int64_t> labels;
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<int64_t> v;
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      std::string field = line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      // Integers, possibly written as "3.0".
      char* end = nullptr;
      double x = std::strtod(field.c_str(), &end);
      require(!field.empty() && end && *end == '\0' && x == static_cast<double>(static_cast<int64_t>(x)),
              path + ":" + std::to_string(line_no) + ": field " + std::to_string(v.size() + 1) + " '" + field +
                  "' is not an integer; each line must be 64 pixel values 0..16 and a label 0..9");
      v.push_back(static_cast<int64_t>(x));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    require(v.size() == 65, path + ":" + std::to_string(line_no) + ": " + std::to_string(v.size()) +
                                " fields, expected 65 (64 pixel values and a label)");
    std::vector<uint8_t> px(64);
    for (int k = 0; k < 64; ++k) {
      require(v[k] >= 0 && v[k] <= 16, path + ":" + std::to_string(line_no) + ": pixel " + std::to_string(k + 1) +
                                           " = " + std::to_string(v[k]) + " is outside 0..16");
      px[k] = static_cast<uint8_t>((v[k] * 255 + 8) / 16);
    }
    require(v[64] >= 0 && v[64] <= 9, path + ":" + std::to_string(line_no) + ": label " + std::to_string(v[64]) +
                                          " is outside 0..9");
    rows.push_back(std::move(px));
    labels.push_back(v[64]);
  }
  require(!rows.empty(), path + ": no rows; expected sklearn's digits.csv(.gz)");
  // Stratified split: per class, shuffle with derive_seed(0, {class}); the first round(0.2 * count) are test.
  std::vector<int64_t> chosen;
  for (int64_t k = 0; k < 10; ++k) {
    std::vector<int64_t> members;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == k) members.push_back(static_cast<int64_t>(i));
    SplitMix rng(derive_seed(0, {uint64_t(k)}));
    for (int64_t i = static_cast<int64_t>(members.size()) - 1; i > 0; --i)
      std::swap(members[static_cast<size_t>(i)], members[rng.below(static_cast<uint64_t>(i + 1))]);
    const size_t n_test = static_cast<size_t>((members.size() * 2 + 5) / 10);  // round(0.2 * count)
    if (spec.split == "test") chosen.insert(chosen.end(), members.begin(), members.begin() + n_test);
    else chosen.insert(chosen.end(), members.begin() + n_test, members.end());
  }
  std::sort(chosen.begin(), chosen.end());
  std::vector<uint8_t> pix;
  std::vector<int64_t> lab;
  for (int64_t i : chosen) {
    pix.insert(pix.end(), rows[i].begin(), rows[i].end());
    lab.push_back(labels[i]);
  }
  std::string desc = "sklearn digits " + spec.split + " " + path + ": " + std::to_string(lab.size()) + " of " +
                     std::to_string(rows.size()) + " images 1x8x8, 10 classes";
  return std::make_shared<MemoryDataset>(std::move(pix), std::move(lab), 1, 8, 8, 10, desc, 0);
}

}  // namespace nfscale::data
