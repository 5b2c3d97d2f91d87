// image_folder.cpp - ImageFolder reader: one sub-folder per class (sorted names), JPEG/PNG files. Open time does
// cheap structural checks only (magic bytes, end marker); decoding happens lazily in load() on loader threads.
#include <atomic>
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "nfscale/data/image_codec.h"
#include "nfscale/data/readers.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace fs = std::filesystem;

namespace nfscale::data {
namespace {

ImageFormat format_from_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (e == ".jpg" || e == ".jpeg") return ImageFormat::kJpeg;
  if (e == ".png") return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

// Reads the first and last 16 bytes and runs check_image_structure. "" = fine.
std::string quick_check(const fs::path& p, ImageFormat expected) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return "cannot be opened";
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 16) return "truncated: only " + std::to_string(size) + " bytes";
  std::string head(16, '\0'), tail(16, '\0');
  f.seekg(0);
  f.read(head.data(), 16);
  f.seekg(size - 16);
  f.read(tail.data(), 16);
  if (!f) return "cannot be read";
  return check_image_structure(head, tail, expected);
}

class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(std::vector<std::string> files, std::vector<int64_t> labels, std::vector<std::string> classes,
                     std::string root, bool skip_bad, int64_t skipped)
      : files_(std::move(files)), labels_(std::move(labels)), classes_(std::move(classes)), root_(std::move(root)),
        skip_bad_(skip_bad), skipped_(skipped) {}

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t label(int64_t i) const override { return labels_.at(static_cast<size_t>(i)); }
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  int64_t channels() const override { return 3; }
  int64_t skipped() const override { return skipped_; }
  int64_t replaced() const override { return replaced_.load(); }
  std::string describe() const override {
    std::string d = "image folder " + root_ + ": " + std::to_string(files_.size()) + " images, " +
                    std::to_string(classes_.size()) + " classes, decoded to 3 channels";
    if (skipped_) d += ", " + std::to_string(skipped_) + " skipped at open (bad files)";
    return d;
  }

  RawExample load(int64_t i) const override {
    const int64_t n = size();
    for (int64_t attempt = 0; attempt < n; ++attempt) {
      const int64_t j = (i + attempt) % n;  // deterministic replacement: the next index, cyclically
      try {
        return RawExample{decode_file(j), labels_[static_cast<size_t>(j)]};
      } catch (const UserError&) {
        if (!skip_bad_) throw;
        replaced_.fetch_add(1);
      }
    }
    throw UserError(root_ + ": every image failed to decode; the folder holds no usable data");
  }

  const std::vector<std::string>& class_names() const { return classes_; }

 private:
  Image decode_file(int64_t j) const {
    const std::string& path = files_[static_cast<size_t>(j)];
    std::string bytes = read_file(path);
    Image img = decode_image(bytes, path);
    if (img.channels != 3) img = convert_channels(img, 3);  // grey, grey+alpha, RGBA -> RGB
    return img;
  }

  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  std::vector<std::string> classes_;
  std::string root_;
  bool skip_bad_;
  int64_t skipped_;
  mutable std::atomic<int64_t> replaced_{0};
};

}  // namespace

std::shared_ptr<Dataset> open_image_folder(const DataSpec& spec) {
  require(!spec.path.empty(), "data spec: imagefolder needs a path (imagefolder:/data/root)");
  fs::path root = spec.path;
  if (fs::is_directory(root / spec.split)) root /= spec.split;  // root/train/<class>/..., root/test/<class>/...
  require(fs::is_directory(root), root.string() + ": not a directory; give a folder with one sub-folder per class");
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  require(!classes.empty(), root.string() + ": no class sub-folders; expected one folder of images per class");
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  int64_t skipped = 0;
  for (size_t k = 0; k < classes.size(); ++k) {
    std::vector<fs::path> paths;
    for (const auto& e : fs::recursive_directory_iterator(root / classes[k]))
      if (e.is_regular_file() && format_from_extension(e.path()) != ImageFormat::kUnknown) paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    int64_t good = 0;
    for (const auto& p : paths) {
      std::string problem = quick_check(p, format_from_extension(p));
      if (!problem.empty()) {
        require(spec.skip_bad, p.string() + ": " + problem + "; remove or replace the file, or set skip_bad");
        ++skipped;
        continue;
      }
      files.push_back(p.string());
      labels.push_back(static_cast<int64_t>(k));
      ++good;
    }
    require(good > 0, (root / classes[k]).string() + ": class folder has no " +
                          std::string(paths.empty() ? "" : "usable ") +
                          "JPEG/PNG images; add images or remove the folder");
  }
  return std::make_shared<ImageFolderDataset>(std::move(files), std::move(labels), std::move(classes), root.string(),
                                              spec.skip_bad, skipped);
}

}  // namespace nfscale::data
