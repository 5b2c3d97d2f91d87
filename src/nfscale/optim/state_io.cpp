// state_io.cpp - nested-archive serialisation of named tensor lists for the optimiser stack.
#include "nfscale/optim/state_io.h"

#include <torch/serialize/archive.h>

#include "nfscale/util/error.h"

namespace nfscale::optim {

namespace {
std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

void write_tensor_list(torch::serialize::OutputArchive& archive, const std::string& key, const std::string& kind,
                       int64_t step, const std::vector<std::string>& names,
                       const std::vector<torch::Tensor>& tensors) {
  torch::serialize::OutputArchive sub(archive.compilation_unit());
  sub.write("kind", c10::IValue(kind));
  sub.write("step", c10::IValue(step));
  sub.write("count", c10::IValue(static_cast<int64_t>(tensors.size())));
  for (size_t i = 0; i < tensors.size(); ++i) {
    sub.write("name_" + std::to_string(i), c10::IValue(names[i]));
    sub.write("tensor_" + std::to_string(i), tensors[i].detach().clone().contiguous(), /*is_buffer=*/true);
  }
  archive.write(key, sub);
}

int64_t read_tensor_list(torch::serialize::InputArchive& archive, const std::string& key, const std::string& kind,
                         const std::vector<std::string>& names, const std::vector<torch::Tensor>& tensors) {
  const std::string where = "checkpoint entry '" + key + "'";
  torch::serialize::InputArchive sub;
  require(archive.try_read(key, sub),
          where + " is missing; the checkpoint was written without " + kind + " state (resume from a checkpoint "
                  "written by the same training configuration)");
  c10::IValue v;
  require(sub.try_read("kind", v) && v.isString() && v.toStringRef() == kind,
          where + " does not hold " + kind + " state; the checkpoint is from another program or version");
  require(sub.try_read("step", v) && v.isInt(), where + " has no step counter; the checkpoint is corrupt");
  const int64_t step = v.toInt();
  require(sub.try_read("count", v) && v.isInt(), where + " has no tensor count; the checkpoint is corrupt");
  const int64_t count = v.toInt();
  require(count == static_cast<int64_t>(tensors.size()),
          where + " holds " + std::to_string(count) + " tensors but the model has " +
              std::to_string(tensors.size()) + " parameters; load a checkpoint of the same model variant");
  std::vector<torch::Tensor> loaded(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string idx = std::to_string(i);
    require(sub.try_read("name_" + idx, v) && v.isString(), where + ": entry " + idx + " has no name; corrupt");
    require(v.toStringRef() == names[i], where + ": parameter #" + idx + " is '" + v.toStringRef() +
                                             "' in the checkpoint but '" + names[i] +
                                             "' in the model; load a checkpoint of the same model variant");
    require(sub.try_read("tensor_" + idx, loaded[i], /*is_buffer=*/true),
            where + ": tensor for '" + names[i] + "' is missing; the checkpoint is corrupt");
    require(loaded[i].sizes() == tensors[i].sizes(),
            where + ": '" + names[i] + "' has shape " + shape_str(loaded[i].sizes()) + " in the checkpoint but " +
                shape_str(tensors[i].sizes()) + " in the model; load a checkpoint of the same model variant");
    require(loaded[i].scalar_type() == tensors[i].scalar_type(),
            where + ": '" + names[i] + "' has dtype " + std::string(c10::toString(loaded[i].scalar_type())) +
                " in the checkpoint but " + std::string(c10::toString(tensors[i].scalar_type())) +
                " in the model; keep the master-weight precision when resuming");
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].copy_(loaded[i]);
  return step;
}

}  // namespace nfscale::optim
