// device.cpp - parsing and checking --device (see device.h).
#include "nfscale/util/device.h"

#include <torch/cuda.h>

#include "nfscale/util/error.h"

namespace nfscale {

torch::Device parse_device(const std::string& text, const std::string& field) {
  const std::string fix = "; valid: cpu, cuda, cuda:N";
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text != "cuda" && text.rfind("cuda:", 0) != 0) throw UserError(field + " '" + text + "': unknown device" + fix);
  int64_t index = 0;
  if (text.size() > 5) {
    const std::string n = text.substr(5);
    require(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 4,
            field + " '" + text + "': the device index must be a small non-negative integer" + fix);
    index = std::stoll(n);
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  require(count > 0, field + " '" + text + "': this nfscale build or machine has no CUDA device (LibTorch sees none); "
                     "use --device cpu, or build against a CUDA LibTorch (README)");
  require(index < count, field + " '" + text + "': only " + std::to_string(count) + " CUDA device(s) (0.." +
                             std::to_string(count - 1) + ")");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::Device module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters(/*recurse=*/true)) return p.device();
  for (const auto& b : module.buffers(/*recurse=*/true)) return b.device();
  return torch::Device(torch::kCPU);
}

}  // namespace nfscale
