// device.h - the --device flag: "cpu", "cuda" or "cuda:N" parsed into a torch::Device, with a named error when the
// device does not exist in this build or on this machine.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <string>

namespace nfscale {

// UserError naming `field` for a malformed value or an unavailable CUDA device.
torch::Device parse_device(const std::string& text, const std::string& field = "--device");

// Where a module's tensors live: the device of its first parameter (or buffer); CPU for a module without tensors.
torch::Device module_device(const torch::nn::Module& module);

}  // namespace nfscale
