// Compression of the new layer, run on all cores.
// gzip: the layer is cut into chunks that deflate independently (one task each) and join into
// one gzip member, as pigz does: every chunk but the last ends with a sync flush (byte-aligned,
// not final), the last one with the final block, and the trailer's CRC-32 is combined from the
// chunks' CRCs. zstd: one frame from libzstd's own multithreaded streaming compressor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/layer-blob.h"
#include "io/mapped-file.h"
#include "io/sink.h"
#include "io/status.h"

namespace dsq {

// Default and allowed levels for `c` (gzip 1-9, default 6; zstd 1-19, default 3).
int default_level(Compression c);
bool valid_level(Compression c, int level);

// Deflates one chunk of a gzip member into `out` (replacing its contents); `crc` receives the
// chunk's CRC-32. Chunks are independent, so this runs concurrently.
Status deflate_chunk(Bytes in, int level, bool last, std::vector<std::byte>& out, uint32_t& crc);
std::string gzip_header();
std::string gzip_trailer(uint32_t crc, uint64_t size);
// The CRC-32 of A followed by B, from their CRCs and B's length.
uint32_t crc32_join(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);

class ZstdWriter {
 public:
  ZstdWriter();
  ~ZstdWriter();
  ZstdWriter(const ZstdWriter&) = delete;
  ZstdWriter& operator=(const ZstdWriter&) = delete;

  Status init(int level, unsigned workers);
  // Compresses `in`, writing to `out` whatever compressed output is ready.
  Status write(Bytes in, Sink& out);
  // Ends the frame.
  Status finish(Sink& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dsq
