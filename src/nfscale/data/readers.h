// readers.h - the concrete dataset readers behind open_dataset (IDX, CIFAR binary, ImageFolder, sklearn digits)
// and the shared file helpers (whole-file reads with transparent gzip).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "nfscale/data/dataset.h"

namespace nfscale::data {

// Reads a whole file; if it is gzip-compressed (magic 1F 8B) it is inflated with zlib. Throws UserError naming the
// file if it is missing, unreadable or a corrupt/truncated gzip stream.
std::string read_file_maybe_gzip(const std::string& path);

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kDigitsCsv = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

// IDX pair {prefix}-images-idx3-ubyte[.gz] / {prefix}-labels-idx1-ubyte[.gz] in `spec.path`, prefix "train" or
// "t10k". `num_classes` > 0 fixes the class count (labels >= it are bad); 0 infers max label + 1.
std::shared_ptr<Dataset> open_idx(const DataSpec& spec, int64_t num_classes);
// Or directly from two files.
std::shared_ptr<Dataset> open_idx_files(const std::string& images, const std::string& labels, int64_t num_classes,
                                        bool skip_bad);

// CIFAR binary: cifar10 data_batch_{1..5}.bin / test_batch.bin (1 label byte + 3072 pixels);
// cifar100 train.bin / test.bin (coarse + fine label bytes + 3072 pixels; the fine label is used).
std::shared_ptr<Dataset> open_cifar(const DataSpec& spec, bool cifar100);

// One sub-folder per class (sorted names), JPEG/PNG files decoded lazily, converted to 3 channels.
std::shared_ptr<Dataset> open_image_folder(const DataSpec& spec);

// sklearn's digits.csv.gz: 64 pixel values 0..16 then the label, per line; 8x8x1, pixels scaled by 255/16.
// Split rule: stratified, per class the indices are shuffled with a permutation from derive_seed(0, {class})
// and the first round(0.2 * count) go to "test", the rest to "train".
std::shared_ptr<Dataset> open_digits(const DataSpec& spec);

}  // namespace nfscale::data
