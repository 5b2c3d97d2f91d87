// evaluate.cpp - one ordered pass over an index list: cross-entropy, top-1 and top-5 error.
#include "nfscale/train/evaluate.h"

#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nfscale/data/dataset.h"
#include "nfscale/data/loader.h"
#include "nfscale/models/classifier.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/util/device.h"
#include "nfscale/train/autocast.h"

namespace nfscale::train {

EvalResult evaluate(models::ClassifierImpl& model, std::shared_ptr<data::Dataset> dataset,
                    const std::vector<int64_t>& indices, const EvalOptions& o) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.threads = o.threads;
  lo.train = false;
  lo.resolution = o.resolution;
  lo.augment = o.augment;
  lo.channels = o.channels;
  lo.shard_count = o.shard_count;
  lo.shard_index = o.shard_index;
  data::Loader loader(std::move(dataset), indices, lo);
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  double loss_sum = 0.0;
  int64_t top1 = 0, top5 = 0, n = 0;
  const torch::Device device = module_device(model);
  while (loader.has_next()) {
    data::Batch b = loader.next();
    torch::Tensor x = b.images.to(device);  // [B, C, R, R]
    if (o.channels_last) x = models::to_channels_last(x);  // canonical strides, also for 1 channel
    torch::Tensor logits;
    {
      AutocastScope autocast(o.bf16);
      logits = model.forward(x);
    }
    logits = logits.to(torch::kCPU, torch::kFloat32);                          // [B, K]
    auto logp = torch::log_softmax(logits, 1);
    loss_sum += -logp.gather(1, b.labels.unsqueeze(1)).sum().item<double>();  // sum of -log p(label)
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    auto topk = std::get<1>(logits.topk(k, 1));                                // [B, k]
    auto hit = topk.eq(b.labels.unsqueeze(1));                                 // [B, k]
    top1 += hit.select(1, 0).sum().item<int64_t>();
    top5 += hit.any(1).sum().item<int64_t>();
    n += b.size();
  }
  if (was_training) model.train();
  EvalResult r;
  r.examples = n;
  if (n > 0) {
    r.loss = loss_sum / double(n);
    r.top1_err = 1.0 - double(top1) / double(n);
    r.top5_err = 1.0 - double(top5) / double(n);
  }
  return r;
}

std::vector<double> eval_sums(const EvalResult& r) {
  const double n = double(r.examples);
  return {r.loss * n, std::round((1.0 - r.top1_err) * n), std::round((1.0 - r.top5_err) * n), n};
}

EvalResult eval_from_sums(const std::vector<double>& s) {
  EvalResult r;
  r.examples = static_cast<int64_t>(std::llround(s.at(3)));
  if (r.examples > 0) {
    r.loss = s[0] / s[3];
    r.top1_err = 1.0 - s[1] / s[3];
    r.top5_err = 1.0 - s[2] / s[3];
  }
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  return {{"loss", r.loss}, {"top1_err", r.top1_err}, {"top5_err", r.top5_err}, {"examples", r.examples}};
}

}  // namespace nfscale::train
