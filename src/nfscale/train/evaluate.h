// evaluate.h - held-out / test evaluation of a classifier: cross-entropy, top-1 and top-5 error.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nfscale/data/transforms.h"

namespace nfscale::models {
class ClassifierImpl;
}
namespace nfscale::data {
class Dataset;
}

namespace nfscale::train {

struct EvalResult {
  double loss = 0.0;      // mean cross-entropy (natural log) against the hard labels
  double top1_err = 0.0;  // fraction in [0, 1]
  double top5_err = 0.0;  // fraction in [0, 1] (equals 0 when there are <= 5 classes)
  int64_t examples = 0;
};

struct EvalOptions {
  int64_t resolution = 32;
  int64_t batch = 256;
  int threads = 2;          // loader threads
  int64_t channels = 0;     // 0 = the dataset's
  bool bf16 = false;
  bool channels_last = false;
  data::AugmentConfig augment;  // only the eval fields (normalisation, eval crop) are used
  int64_t shard_count = 1, shard_index = 0;  // data parallelism: this rank evaluates every shard_count-th batch
};

// Evaluates `model` (switched to eval mode and back) on `indices` of `dataset` with the eval transform
// (resize + centre crop). Deterministic. With shard_count > 1 the result covers this rank's batches only: combine
// the ranks' results with combine_eval (examples-weighted).
EvalResult evaluate(models::ClassifierImpl& model, std::shared_ptr<data::Dataset> dataset,
                    const std::vector<int64_t>& indices, const EvalOptions& options);

nlohmann::json to_json(const EvalResult& r);

// The sums behind a result ({loss_sum, top1_hits, top5_hits, examples}) and back: ranks all-reduce these.
std::vector<double> eval_sums(const EvalResult& r);
EvalResult eval_from_sums(const std::vector<double>& sums);

}  // namespace nfscale::train
