// test_checkpoint_format.cpp - the checkpoint's format version is checked on load (named error for a future or
// corrupt version, or none at all), and the model's WS form travels in the checkpoint.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "nfscale/models/layers.h"
#include "nfscale/optim/sgd_agc.h"
#include "nfscale/train/checkpoint.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "train_test_util.h"

namespace nfscale::train {
namespace {
using namespace testing;

std::string load_error(const std::string& path, models::ClassifierImpl& m) {
  std::vector<optim::ParamSpec> specs;
  for (auto& p : m.param_info()) specs.push_back({p.name, p.param, p.weight_decay, p.agc});
  optim::SgdAgc opt(specs);
  try {
    load_checkpoint(path, m, opt, nullptr);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// A checkpoint of `m` whose state entry says format `version` (-1: no format entry).
std::string checkpoint_with_version(const std::string& dir, models::ClassifierImpl& m, int64_t version) {
  std::vector<optim::ParamSpec> specs;
  for (auto& p : m.param_info()) specs.push_back({p.name, p.param, p.weight_decay, p.agc});
  optim::SgdAgc opt(specs);
  const std::string good = dir + "/good.pt";
  save_checkpoint(good, m, opt, nullptr, LoopState{});
  torch::serialize::OutputArchive root, model_ar, optim_ar, state_ar;
  torch::serialize::InputArchive in;
  in.load_from(good);
  torch::serialize::InputArchive in_model, in_optim;
  in.read("model", in_model);
  for (const auto& k : in_model.keys()) {
    torch::Tensor t;
    if (in_model.try_read(k, t)) model_ar.write(k, t);
  }
  opt.save(optim_ar);
  if (version >= 0) state_ar.write("format", torch::tensor({version}, torch::kInt64));
  for (const char* k : {"step", "position", "examples_seen", "total_steps"}) state_ar.write(k, torch::tensor({int64_t{0}}));
  state_ar.write("seconds", torch::tensor({0.0}, torch::kFloat64));
  root.write("model", model_ar);
  root.write("optimizer", optim_ar);
  root.write("state", state_ar);
  const std::string path = dir + "/v" + std::to_string(version) + ".pt";
  std::ostringstream out;
  root.save_to(out);
  write_file_atomic(path, out.str());
  return path;
}

TEST(CheckpointFormat, VersionIsCheckedOnLoad) {
  const std::string dir = fresh_dir("ckpt_format");
  auto m = digits_model();
  {
    torch::NoGradGuard ng;
    for (auto& p : m->parameters()) p.normal_();
  }
  EXPECT_GE(checkpoint_format_version(), 2);
  EXPECT_EQ(load_error(checkpoint_with_version(dir, *m, 1), *m), "");  // version 1 (before model_meta) still loads
  auto msg = load_error(checkpoint_with_version(dir, *m, 99), *m);
  EXPECT_NE(msg.find("format version 99"), std::string::npos) << msg;
  EXPECT_NE(msg.find("newer nfscale"), std::string::npos) << msg;
  EXPECT_NE(msg.find("v99.pt"), std::string::npos) << msg;
  msg = load_error(checkpoint_with_version(dir, *m, -1), *m);
  EXPECT_NE(msg.find("has no format version"), std::string::npos) << msg;
}

TEST(CheckpointFormat, WsFormTravelsAndMismatchIsNamed) {
  const std::string dir = fresh_dir("ckpt_wsform");
  auto m = digits_model();
  {
    torch::NoGradGuard ng;
    for (auto& p : m->parameters()) p.normal_();
  }
  models::set_ws_form(*m, models::WsForm::kTimm);
  std::vector<optim::ParamSpec> specs;
  for (auto& p : m->param_info()) specs.push_back({p.name, p.param, p.weight_decay, p.agc});
  optim::SgdAgc opt(specs);
  save_checkpoint(dir + "/c.pt", *m, opt, nullptr, LoopState{});
  auto other = digits_model();  // deepmind form
  const auto msg = load_error(dir + "/c.pt", *other);
  EXPECT_NE(msg.find("timm weight standardisation"), std::string::npos) << msg;
  models::set_ws_form(*other, models::WsForm::kTimm);
  EXPECT_EQ(load_error(dir + "/c.pt", *other), "");
  EXPECT_EQ(count_different(*m, *other), 0);
}

}  // namespace
}  // namespace nfscale::train
