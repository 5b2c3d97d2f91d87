// atomic_file.h - crash-safe file writes: write to a temp file in the same directory, fsync, rename, fsync dir.
// A reader never sees a half-written file where a good one was.
#pragma once
#include <string>
#include <string_view>

namespace nfscale {

// Atomically replaces `path` with `bytes`. Throws UserError naming the path on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file. Throws UserError naming the path if it cannot be read.
std::string read_file(const std::string& path);

// Appends one line (a '\n' is added) and flushes it to disk; used for JSON Lines metrics.
void append_line_durable(const std::string& path, std::string_view line);

// Creates a directory and its parents; throws UserError naming it on failure.
void make_dirs(const std::string& path);

}  // namespace nfscale
