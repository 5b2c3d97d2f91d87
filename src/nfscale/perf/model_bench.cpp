// model_bench.cpp - nfscale's side of `nfscale bench` (see model_bench.h).
#include "nfscale/perf/model_bench.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>

#include "nfscale/data/loader.h"
#include "nfscale/models/fused_ops.h"
#include "nfscale/models/memory_format.h"
#include "nfscale/models/registry.h"
#include "nfscale/optim/optimizer_factory.h"
#include "nfscale/train/autocast.h"
#include "nfscale/train/step.h"

namespace nfscale::perf {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Waits for the queued work of a CUDA device (its kernels run asynchronously); nothing to wait for on the CPU.
void finish(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

}  // namespace

struct ModelBench::State {
  models::ModelConfig config;
  models::Classifier model;
  std::unique_ptr<optim::Optimizer> opt;
  std::vector<data::Batch> micro;  // one batch: images [B, C, R, R] NCHW (the step converts the layout)
  torch::Tensor x_cl;              // the same images, channels_last, for inference
  int64_t batch = 0;
  torch::Device device = torch::kCPU;

  State(models::ModelConfig mc, models::Classifier m, const optim::OptimizerConfig& oc)
      : config(std::move(mc)), model(std::move(m)), opt(optim::make_optimizer(oc, model->param_info())) {}
};

ModelBench::ModelBench(const BenchCase& c, const torch::Device& device) {
  const models::ModelInfo spec = models::model_info(c.model);
  const models::ModelFamily& family = models::family_of(c.model);
  models::ModelConfig mc;
  mc.name = c.model;
  mc.resolution = c.res;
  mc.num_classes = spec.ref_num_classes;
  mc.in_channels = spec.ref_in_channels;
  torch::manual_seed(0);
  auto model = models::build_model(mc);
  cost_ = models::count_cost(*model, c.res, mc.in_channels);
  {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("skip_gain") != std::string::npos) p.value().fill_(0.5);  // every branch's backward runs
    // A zero-initialised head (big_vision's ViT) would leave the body's gradients zero: give it small weights.
    for (auto& p : model->named_parameters())
      if (p.key().rfind(family.head_prefix(), 0) == 0 && p.value().dim() == 2 && p.value().abs().max().item<double>() == 0)
        p.value().normal_(0.0, 0.01);
  }
  model->to(device);  // before the optimiser creates its state (on the same device)
  // The family's optimiser, as the trainer uses it (NFNets SGD+AGC, ViTs AdamW with global-norm clipping).
  optim::OptimizerConfig oc = family.train_defaults().optimizer;
  oc.adamw.peak_lr = 1e-3;
  oc.sgd.fused = oc.sgd.fused && device.is_cpu();  // the one-pass update is a CPU kernel
  s_ = std::make_unique<State>(mc, model, oc);
  data::Batch batch;
  batch.images = torch::randn({c.batch, mc.in_channels, c.res, c.res});  // [B, C, R, R]
  batch.labels = torch::randint(0, mc.num_classes, {c.batch});           // [B]
  batch.targets = torch::full({c.batch, mc.num_classes}, 0.1 / double(mc.num_classes));  // [B, K] smoothed one-hot
  batch.targets.scatter_add_(1, batch.labels.view({-1, 1}), torch::full({c.batch, 1}, 0.9));
  batch.images = batch.images.to(device);
  batch.labels = batch.labels.to(device);
  batch.targets = batch.targets.to(device);
  s_->x_cl = models::to_channels_last(batch.images);
  s_->micro = {batch};
  s_->batch = c.batch;
  s_->device = device;
}

ModelBench::~ModelBench() = default;

int64_t ModelBench::classes() const { return s_->config.num_classes; }
int64_t ModelBench::in_channels() const { return s_->config.in_channels; }
std::string ModelBench::optimizer_kind() const { return s_->opt->kind(); }

double ModelBench::train_rate(bool fused, int steps, const StepSetting& st, std::vector<double>* opt_ms) {
  models::set_fused_ops(fused);
  s_->model->train();
  const auto t0 = Clock::now();
  double opt_s = 0.0;
  for (int i = 0; i < steps; ++i) {
    train::accumulate_gradients(*s_->model, s_->micro, s_->batch, st.bf16, st.channels_last, *s_->opt);
    const auto t1 = Clock::now();
    s_->opt->step(1e-3);
    finish(s_->device);
    opt_s += seconds_since(t1);
  }
  if (opt_ms) opt_ms->push_back(1e3 * opt_s / steps);
  return double(s_->batch) * steps / seconds_since(t0);
}

double ModelBench::infer_rate(bool fused, int steps, const StepSetting& st) {
  models::set_fused_ops(fused);
  s_->model->eval();
  const auto& x = st.channels_last ? s_->x_cl : s_->micro.front().images;
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    c10::InferenceMode im;
    train::AutocastScope ac(st.bf16);
    auto y = s_->model->forward(x);  // [B, K]
  }
  finish(s_->device);
  s_->model->train();
  return double(s_->batch) * steps / seconds_since(t0);
}

nlohmann::json ModelBench::choose_settings(const std::vector<StepSetting>& candidates, bool fused) {
  double best_train = 0, best_infer = 0;
  nlohmann::json tried = nlohmann::json::object();
  for (const StepSetting& st : candidates) {
    train_rate(fused, 1, st);
    infer_rate(fused, 1, st);
    const double tr = std::max(train_rate(fused, 1, st), train_rate(fused, 1, st));
    const double in = std::max(infer_rate(fused, 1, st), infer_rate(fused, 1, st));
    tried[st.str()] = {{"train_img_s", tr}, {"infer_img_s", in}};
    if (tr > best_train) best_train = tr, train_setting_ = st;
    if (in > best_infer) best_infer = in, infer_setting_ = st;
  }
  return tried;
}

}  // namespace nfscale::perf
