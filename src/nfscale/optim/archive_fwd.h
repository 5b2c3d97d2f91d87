// archive_fwd.h - forward declarations of LibTorch's serialisation archives, so optimiser headers can declare
// save/load without pulling the (heavy) archive headers into every includer.
#pragma once

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize
