// op_profile.cpp - see op_profile.h. Push/pop ranges are paired per thread with a stack; an op's self time is its
// range minus the ranges opened inside it on the same thread.
#include "nfscale/util/op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <cstdio>
#include <map>

namespace nfscale {

namespace {

// "[a,b] [c] []": the shapes the profiler recorded for an op's inputs.
std::string shapes_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string out;
  for (const auto& shape : shapes) {
    out += out.empty() ? "[" : " [";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
    out += "]";
  }
  return out;
}

}  // namespace

std::vector<OpStat> profile_ops(const std::function<void()>& fn, bool by_shapes) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(
      torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/by_shapes));
  try {
    fn();
  } catch (...) {
    prof::disableProfilerLegacy();
    throw;
  }
  const prof::thread_event_lists lists = prof::disableProfilerLegacy();
  std::map<std::string, OpStat> by_name;
  for (const auto& events : lists) {
    struct Open {
      const prof::LegacyEvent* push;
      double child_us;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Open open = stack.back();
        stack.pop_back();
        const double total = open.push->cpuElapsedUs(e);
        std::string key = open.push->name();
        if (by_shapes) {
          key += " " + shapes_text(open.push->shapes());
          if (!stack.empty()) key += std::string(" in ") + stack.front().push->name();
        }
        OpStat& s = by_name[key];
        s.name = key;
        s.calls += 1;
        s.total_us += total;
        s.self_us += total - open.child_us;
        if (!stack.empty()) stack.back().child_us += total;
      }
    }
  }
  std::vector<OpStat> out;
  for (auto& kv : by_name) out.push_back(kv.second);
  std::sort(out.begin(), out.end(), [](const OpStat& a, const OpStat& b) { return a.self_us > b.self_us; });
  return out;
}

std::string format_op_table(const std::vector<OpStat>& stats, size_t rows) {
  double sum = 0.0;
  int width = 48;  // the name column: 48 characters, wider for the long names of a by-shapes profile (up to 120)
  for (size_t i = 0; i < stats.size(); ++i) {
    sum += stats[i].self_us;
    if (i < rows) width = std::max(width, std::min(120, int(stats[i].name.size())));
  }
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "  %-*s %7s %10s %6s %10s %9s\n", width, "op", "calls", "self ms", "self%",
                "total ms", "us/call");
  out += buf;
  for (size_t i = 0; i < std::min(rows, stats.size()); ++i) {
    const auto& s = stats[i];
    std::snprintf(buf, sizeof buf, "  %-*.*s %7lld %10.2f %5.1f%% %10.2f %9.1f\n", width, width, s.name.c_str(),
                  static_cast<long long>(s.calls), s.self_us / 1e3, sum > 0 ? 100.0 * s.self_us / sum : 0.0,
                  s.total_us / 1e3, s.self_us / double(std::max<int64_t>(1, s.calls)));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  (%zu op names, %.2f ms summed self time)\n", stats.size(), sum / 1e3);
  out += buf;
  return out;
}

}  // namespace nfscale
