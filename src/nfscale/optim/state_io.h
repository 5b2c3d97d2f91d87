// state_io.h - save/load of the optimiser stack's per-parameter tensors (momentum buffers, EMA shadows) to
// torch::serialize archives, bit-exactly, with validation of names, shapes and dtypes before anything is changed.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/optim/archive_fwd.h"

namespace nfscale::optim {

// Writes a nested archive under `key` holding: a format tag, `step`, the tensor count, and for each i the name
// "name_<i>" and the tensor "tensor_<i>" (a contiguous clone, so later in-place updates do not alias it).
void write_tensor_list(torch::serialize::OutputArchive& archive, const std::string& key, const std::string& kind,
                       int64_t step, const std::vector<std::string>& names,
                       const std::vector<torch::Tensor>& tensors);

// Reads the nested archive `key` written by write_tensor_list and copies its tensors into `tensors` (in place,
// bit-exact). Every name, shape and dtype is checked first; on any mismatch a UserError names the entry and
// nothing is modified. Returns the stored step.
int64_t read_tensor_list(torch::serialize::InputArchive& archive, const std::string& key, const std::string& kind,
                         const std::vector<std::string>& names, const std::vector<torch::Tensor>& tensors);

}  // namespace nfscale::optim
