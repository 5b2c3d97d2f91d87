// step.cpp - micro-batch gradient accumulation for one optimiser step (see step.h).
#include "nfscale/train/step.h"

#include <torch/torch.h>

#include "nfscale/data/loader.h"
#include "nfscale/dist/communicator.h"
#include "nfscale/models/classifier.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/optim/optimizer.h"
#include "nfscale/train/autocast.h"
#include "nfscale/util/device.h"

namespace nfscale::train {

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  // Reduced-precision logits (bf16 autocast) are promoted to fp32; fp32 and fp64 keep their dtype.
  const torch::Tensor l = logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32);  // [B,K]
  auto logp = torch::log_softmax(l, 1);                                                                    // [B,K]
  return -(targets.to(l.scalar_type()) * logp).sum(1).mean();                                             // []
}

double accumulate_gradients(models::ClassifierImpl& model, const std::vector<data::Batch>& micro_batches,
                            int64_t batch, bool bf16, bool channels_last, optim::Optimizer& opt,
                            const std::vector<uint64_t>* seeds) {
  opt.clear_grads();  // the first backward hands its gradient buffers over (no fill + add pass)
  double loss_sum = 0.0;
  const torch::Device device = module_device(model);
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const data::Batch& mb = micro_batches[i];
    if (seeds) torch::manual_seed(seeds->at(i));
    torch::Tensor x = mb.images.to(device);  // [micro, C, R, R]
    if (channels_last) x = models::to_channels_last(x);  // canonical strides, also for 1 channel
    torch::Tensor loss;  // []
    {
      AutocastScope autocast(bf16);
      loss = soft_cross_entropy(model.forward(x), mb.targets.to(device));
    }
    const double w = double(mb.images.size(0)) / double(batch);
    (loss * w).backward();
    loss_sum += loss.item<double>() * w;
  }
  opt.zero_missing_grads();  // params no backward reached get zeros, as zero_grad() would have left them
  return loss_sum;
}

void all_reduce_gradients(dist::Communicator& comm, optim::Optimizer& opt) {
  if (comm.world_size() == 1) return;
  std::vector<torch::Tensor> grads;  // each [param shape], aliases of param.grad()
  for (const auto& spec : opt.params()) grads.push_back(spec.param.grad());
  dist::all_reduce_mean(comm, grads);
}

void broadcast_model(dist::Communicator& comm, models::ClassifierImpl& model) {
  if (comm.world_size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;
  for (auto& p : model.parameters(true)) tensors.push_back(p);
  for (auto& b : model.buffers(true)) tensors.push_back(b);
  dist::broadcast_flat(comm, tensors, 0);
}

}  // namespace nfscale::train
