// published.h - the paper's headline results at full scale (Smith et al. 2023, Sec. 5 and Fig. 1), as published:
// ImageNet top-1 after fine-tuning against pre-training compute in TPU-v4 core hours. These are numbers quoted
// from the paper, not measurements; the report labels them so.
#pragma once
#include <string>
#include <vector>

namespace nfscale::scaling {

struct PublishedResult {
  std::string family;     // "nfnet" or "vit" (the registry's family names)
  std::string label;      // short, drawn beside the point: e.g. "NFNet-F7+"
  double core_hours = 0;  // pre-training compute, TPU-v4 core hours (approximate, as quoted)
  double top1 = 0;        // ImageNet top-1 accuracy after fine-tuning, %
  std::string note;       // what differs (e.g. "with repeated augmentation")
};

// The quoted results, NFNets first (../shared/docs/reference.md, "What the paper does").
const std::vector<PublishedResult>& published_results();
// Where they come from, one line for captions.
std::string published_source();

}  // namespace nfscale::scaling
