// memory_dataset.h - internal: a dataset held fully in memory as one uint8 buffer of same-sized images
// (IDX, CIFAR, digits readers build one of these after validating the files).
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "nfscale/data/dataset.h"

namespace nfscale::data {

class MemoryDataset : public Dataset {
 public:
  // pixels: n images of [C,H,W] uint8, back to back; labels: n values in [0, num_classes).
  MemoryDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, int64_t c, int64_t h, int64_t w,
                int64_t num_classes, std::string description, int64_t skipped)
      : pixels_(std::move(pixels)), labels_(std::move(labels)), c_(c), h_(h), w_(w), classes_(num_classes),
        description_(std::move(description)), skipped_(skipped) {}
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  RawExample load(int64_t i) const override {
    RawExample ex{Image(c_, h_, w_), labels_.at(static_cast<size_t>(i))};
    std::memcpy(ex.image.pixels.data(), pixels_.data() + static_cast<size_t>(i) * ex.image.pixels.size(),
                ex.image.pixels.size());
    return ex;
  }
  int64_t label(int64_t i) const override { return labels_.at(static_cast<size_t>(i)); }
  int64_t num_classes() const override { return classes_; }
  int64_t channels() const override { return c_; }
  std::string describe() const override { return description_; }
  int64_t skipped() const override { return skipped_; }

 private:
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  int64_t c_, h_, w_, classes_;
  std::string description_;
  int64_t skipped_;
};

}  // namespace nfscale::data
