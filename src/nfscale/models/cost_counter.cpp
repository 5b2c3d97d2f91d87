// cost_counter.cpp - the thread-local counter behind CountingScope.
#include "nfscale/models/cost_counter.h"

namespace nfscale::models {
namespace {
thread_local CostCounter* t_counter = nullptr;
}

CountingScope::CountingScope(CostCounter& counter) : previous_(t_counter) { t_counter = &counter; }
CountingScope::~CountingScope() { t_counter = previous_; }
CostCounter* active_counter() { return t_counter; }

}  // namespace nfscale::models
