// step.h - the gradient computation of one optimiser step: soft-target cross-entropy over accumulated
// micro-batches, each weighted by its share of the effective batch, so N micro-batches give the gradient of one
// large batch. Shared by the trainer (plain and SAM passes) and its tests.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace nfscale::models {
class ClassifierImpl;
}
namespace nfscale::data {
struct Batch;
}
namespace nfscale::optim {
class Optimizer;
}
namespace nfscale::dist {
class Communicator;
}

namespace nfscale::train {

// Mean cross-entropy against soft targets: -(targets * log_softmax(logits)).sum(1).mean().
// logits [B,K] (fp32/fp64, or bf16 under autocast: computed in fp32), targets [B,K] -> scalar of the logits' dtype
// (fp32 for reduced precision). fp64 stays fp64 so the accumulation tests can compare to ~1e-12.
torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

// Resets the gradients (through `opt`, which owns the parameter list: clear_grads, then zero_missing_grads after
// the last backward) and leaves in every param.grad() the gradient of the mean loss over the effective batch:
// micro-batch i contributes loss_i * size_i / batch.
// Each micro-batch's images [size_i, C, R, R] are converted to channels_last when asked, and its forward runs in a
// bf16 autocast scope when bf16 is true. Returns the (weighted) mean loss. The model's train/eval mode and the
// random streams (dropout, stochastic depth) are the caller's: it seeds them before calling.
// seeds: when non-null, one per micro-batch: torch::manual_seed(seeds[i]) before micro-batch i's forward (data
// parallelism draws dropout / stochastic-depth masks per global micro-batch, so any split over ranks is the same run).
double accumulate_gradients(models::ClassifierImpl& model, const std::vector<data::Batch>& micro_batches,
                            int64_t batch, bool bf16, bool channels_last, optim::Optimizer& opt,
                            const std::vector<uint64_t>* seeds = nullptr);

// Averages every param.grad() of `opt` over the ranks of `comm` (one flat buffer per dtype; no-op for one rank).
// Called after accumulate_gradients and before the optimiser clips (AGC / global norm) and updates.
void all_reduce_gradients(dist::Communicator& comm, optim::Optimizer& opt);

// Copies rank 0's parameters and buffers of `model` to every rank (start of a data-parallel run).
void broadcast_model(dist::Communicator& comm, models::ClassifierImpl& model);

}  // namespace nfscale::train
