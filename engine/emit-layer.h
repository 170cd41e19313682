// Streaming the planned layer into a file descriptor while computing its diff_id.
#pragma once

#include <string>
#include <vector>

#include "engine/plan-output.h"
#include "io/mapped-file.h"
#include "io/status.h"

namespace dsq {

// Writes exactly plan.layer_size bytes to `fd` (at its current position); `digest` receives
// "sha256:<hex>" of those bytes. `where` names the output in errors.
// The documented bound on peak memory (README, "Memory"), in bytes, for `entries` indexed
// entries whose normalised paths take `path_bytes`, with `workers` threads: the per-entry
// index, path-map and plan records, the paths (arena growth may double them), the emit
// buffers, one input window (and decoder buffer) per worker, and a fixed base for the process.
uint64_t memory_bound(uint64_t entries, uint64_t path_bytes, unsigned workers);

Status emit_layer(const Plan& plan, const std::vector<Bytes>& tars, int fd,
                  const std::string& where, std::string& digest);

}  // namespace dsq
