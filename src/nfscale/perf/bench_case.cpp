// bench_case.cpp - benchmark cases and step settings (see bench_case.h).
#include "nfscale/perf/bench_case.h"

#include <cstdlib>

#include "nfscale/models/registry.h"
#include "nfscale/util/error.h"

namespace nfscale::perf {
namespace {

// The whole of `s` as a decimal integer; false when it is empty, has other characters or overflows.
bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 12) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = std::strtoll(s.c_str(), nullptr, 10);
  return true;
}

}  // namespace

BenchCase parse_case(const std::string& s) {
  const std::string form = "bench --case '" + s + "': expected MODEL:RES:BATCH, e.g. mini-F3:32:128";
  const auto a = s.find(':'), b = s.rfind(':');
  require(a != std::string::npos && b != a, form);
  BenchCase c;
  c.model = s.substr(0, a);
  require(parse_int(s.substr(a + 1, b - a - 1), c.res), form + " (RES is not a whole number)");
  require(parse_int(s.substr(b + 1), c.batch), form + " (BATCH is not a whole number)");
  models::model_info(c.model);  // any family's member or JSON spec (UserError listing the names otherwise)
  models::check_resolution(c.model, c.res);
  require(c.batch >= 1, "bench --case '" + s + "': batch must be >= 1");
  return c;
}

std::string StepSetting::str() const {
  return std::string(bf16 ? "bf16" : "fp32") + (channels_last ? "/channels_last" : "/nchw");
}

std::vector<StepSetting> candidate_settings(const std::string& precision) {
  std::vector<StepSetting> out;
  for (bool bf16 : {false, true})
    for (bool cl : {false, true}) {
      const StepSetting st{bf16, cl};
      const std::string name = st.str();
      if (precision == "best" || precision == name || precision + (cl ? "/channels_last" : "/nchw") == name)
        out.push_back(st);
    }
  require(!out.empty(), "bench --precision '" + precision +
                            "': expected fp32, bf16, best, fp32/nchw, fp32/channels_last, bf16/nchw or "
                            "bf16/channels_last");
  return out;
}

}  // namespace nfscale::perf
