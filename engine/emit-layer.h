// Streaming the planned layer into a sink, compressed or not, while computing its digests.
#pragma once

#include <string>
#include <vector>

#include "engine/plan-output.h"
#include "io/layer-blob.h"
#include "io/mapped-file.h"
#include "io/sink.h"
#include "io/status.h"

namespace dsq {

// The documented bound on peak memory (README, "Memory"), in bytes, for `entries` indexed
// entries whose normalised paths take `path_bytes`, with `workers` threads: the per-entry
// index, path-map and plan records, the paths (arena growth may double them), the emit
// buffers, one input window (and decoder buffer) per worker, and a fixed base for the process.
// Compressing adds one output buffer per chunk in flight.
uint64_t memory_bound(uint64_t entries, uint64_t path_bytes, unsigned workers, bool compressed);

struct LayerEncoding {
  Compression compression = Compression::kNone;
  int level = 0;
  unsigned workers = 1;  // zstd's own threads
};

struct EmittedLayer {
  std::string diff_id;  // "sha256:<hex>" of the uncompressed tar (plan.layer_size bytes)
  std::string digest;   // of the bytes written: the diff_id when uncompressed
  uint64_t size = 0;    // bytes written
};

// Streams the planned layer, compressed as asked, into `out`.
Status emit_layer(const Plan& plan, const std::vector<Bytes>& tars, const LayerEncoding& encoding,
                  Sink& out, EmittedLayer& layer);

}  // namespace dsq
