// Emit: a four-stage tbb::parallel_pipeline. A serial stage cuts the planned output into
// fixed-size chunks, a parallel stage fills each chunk by copying byte ranges out of the
// mapped layers (then drops those source pages from the resident set), and two serial
// in-order stages hash it and write it, so SHA-256 (the serial floor) overlaps the write. gzip
// deflates each chunk in the parallel stage; zstd compresses in the writing stage with its own
// worker threads. Memory
// bound: kTokens x kChunk bytes of buffers, whatever the size of the layers; the chunk boundaries
// depend only on the plan, so the output never depends on the thread schedule.
#include "engine/emit-layer.h"

#include <tbb/concurrent_queue.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "io/compress.h"
#include "io/sha256.h"
#include "io/temp-files.h"

namespace dsq {

namespace {

constexpr size_t kChunk = 4u << 20;
constexpr size_t kTokens = 8;

// A position in the output: op index and offset within that op's bytes.
struct Cursor {
  size_t op = 0;
  uint64_t offset = 0;
};

uint64_t op_bytes(const Plan& plan, const EmitOp& op) {
  return (op.header == kNoHeader ? 0 : plan.headers[op.header].size()) + op.length + op.pad;
}

// Source pages copied by one chunk, to be dropped from the resident set once it is filled.
// Ranges of one layer closer than kReleaseGap are merged: dropping pages that were never
// faulted in costs nothing, and a shared page that is still needed is simply faulted again.
// Ranges are rounded out to the kernel's fault-around windows but never past the layer's own
// pages, which lie inside its file mapping (rounding past a mapping's end would discard
// someone else's memory).
class Releaser {
 public:
  void add(const std::byte* begin, const std::byte* end, Bytes layer) {
    // A read fault maps a whole fault-around window (64 KiB) or a whole large page-cache folio
    // (up to 2 MiB) around the address. Rounding the start down to 2 MiB drops what earlier
    // copies left mapped; the end is rounded only to the fault-around window, because the next
    // chunk, possibly being filled right now, usually reads on from there.
    const std::byte* lo = std::max(align_down(begin, kLargeFolio), align_down(layer.data(), kPage));
    const std::byte* hi =
        std::min(align_up(end, kFaultAround), align_up(layer.data() + layer.size(), kPage));
    // Only ranges of the same layer merge: the gap between two mappings may be anyone's memory.
    for (Range& r : ranges_) {
      if (r.layer == layer.data() && lo <= r.hi + kReleaseGap && hi + kReleaseGap >= r.lo) {
        r.lo = std::min(r.lo, lo);
        r.hi = std::max(r.hi, hi);
        return;
      }
    }
    if (ranges_.size() == kMaxRanges) flush();
    ranges_.push_back({lo, hi, layer.data()});
  }
  void flush() {
    for (const Range& r : ranges_) release_pages(r.lo, r.hi);
    ranges_.clear();
  }

 private:
  static constexpr size_t kReleaseGap = 1u << 20;
  static constexpr size_t kMaxRanges = 16;
  static constexpr uintptr_t kPage = 4096;
  static constexpr uintptr_t kFaultAround = 64u << 10;
  static constexpr uintptr_t kLargeFolio = 2u << 20;
  static const std::byte* align_down(const std::byte* p, uintptr_t to) {
    return reinterpret_cast<const std::byte*>(reinterpret_cast<uintptr_t>(p) & ~(to - 1));
  }
  static const std::byte* align_up(const std::byte* p, uintptr_t to) {
    return reinterpret_cast<const std::byte*>((reinterpret_cast<uintptr_t>(p) + to - 1) &
                                              ~(to - 1));
  }
  struct Range {
    const std::byte* lo;
    const std::byte* hi;
    const std::byte* layer;  // start of the layer the range belongs to
  };
  std::vector<Range> ranges_;
};

struct Chunk {
  Cursor start;
  size_t size = 0;
  bool last = false;
  std::unique_ptr<std::byte[]> buf{new std::byte[kChunk]};
  std::vector<std::byte> packed;  // gzip: this chunk deflated
  uint32_t crc = 0;               // gzip: CRC-32 of the chunk
  Status status;
};

// Copies `size` output bytes starting at `at` into `dst`, then drops the source pages.
void fill(const Plan& plan, const std::vector<Bytes>& tars, Cursor at, size_t size,
          std::byte* dst) {
  Releaser released;
  while (size > 0 && at.op < plan.ops.size()) {
    const EmitOp& op = plan.ops[at.op];
    uint64_t header = op.header == kNoHeader ? 0 : plan.headers[op.header].size();
    uint64_t pos = at.offset;
    if (pos < header) {
      size_t n = std::min<uint64_t>(header - pos, size);
      std::memcpy(dst, plan.headers[op.header].data() + pos, n);
      dst += n, size -= n, pos += n;
    }
    if (size > 0 && pos < header + op.length) {
      size_t n = std::min<uint64_t>(header + op.length - pos, size);
      const std::byte* src = tars[op.layer].data() + op.offset + (pos - header);
      std::memcpy(dst, src, n);
      released.add(src, src + n, tars[op.layer]);
      dst += n, size -= n, pos += n;
    }
    if (size > 0 && pos < header + op.length + op.pad) {
      size_t n = std::min<uint64_t>(header + op.length + op.pad - pos, size);
      std::memset(dst, 0, n);
      dst += n, size -= n, pos += n;
    }
    if (pos == header + op.length + op.pad) {
      ++at.op;
      at.offset = 0;
    } else {
      at.offset = pos;
    }
  }
  if (size > 0) std::memset(dst, 0, size);  // end-of-archive blocks
  released.flush();
}

// Counts and hashes what passes through to the real sink: the compressed layer's digest.
class HashingSink final : public Sink {
 public:
  explicit HashingSink(Sink& out) : out_(out) {}
  Status write(const void* data, size_t size) override {
    hash_.update(std::string_view(static_cast<const char*>(data), size));
    written_ += size;
    return out_.write(data, size);
  }
  uint64_t written() const { return written_; }
  std::string finish() { return hash_.finish_digest(); }

 private:
  Sink& out_;
  Sha256 hash_;
  uint64_t written_ = 0;
};

}  // namespace

uint64_t memory_bound(uint64_t entries, uint64_t path_bytes, unsigned workers, bool compressed) {
  constexpr uint64_t kPerEntry = 96 + 112 + 88;  // index (with vector slack), path map, plan
  constexpr uint64_t kWindow = (8u << 20) + (2u << 20);  // index release step + decoder
  constexpr uint64_t kBase = 24u << 20;
  // zstd's workers each hold a job's input and output (about 2x its 8 MiB job at level 3).
  const uint64_t buffers =
      kTokens * kChunk * (compressed ? 2 : 1) + (compressed ? workers * (16u << 20) : 0);
  return entries * kPerEntry + 2 * path_bytes + buffers + workers * kWindow + kBase;
}

Status emit_layer(const Plan& plan, const std::vector<Bytes>& tars, const LayerEncoding& encoding,
                  Sink& sink, EmittedLayer& layer) {
  const Compression compression = encoding.compression;
  HashingSink hashed(sink);
  Sink& out = compression == Compression::kNone ? sink : hashed;
  ZstdWriter zstd;
  if (compression == Compression::kZstd) DSQ_TRY(zstd.init(encoding.level, encoding.workers));
  if (compression == Compression::kGzip) DSQ_TRY(out.write(gzip_header().data(), 10));
  uint32_t crc = 0;
  Sha256 hash;
  Status status;                    // written by the last (serial) stage only
  std::atomic<bool> failed{false};  // read by the first stage to stop early
  Cursor next;
  uint64_t remaining = plan.layer_size;
  // Buffers are reused: at most kTokens chunks are in flight, so the pool never runs dry.
  std::vector<std::unique_ptr<Chunk>> chunks;
  tbb::concurrent_queue<Chunk*> free_chunks;
  for (size_t i = 0; i < kTokens; ++i) {
    chunks.push_back(std::make_unique<Chunk>());
    free_chunks.push(chunks.back().get());
  }
  tbb::parallel_pipeline(
      kTokens,
      tbb::make_filter<
          void, Chunk*>(tbb::filter_mode::serial_in_order, [&](tbb::flow_control& fc) -> Chunk* {
        if (remaining == 0 || failed.load(std::memory_order_relaxed)) {
          fc.stop();
          return nullptr;
        }
        Chunk* c = nullptr;
        free_chunks.try_pop(c);
        c->start = next;
        c->size = static_cast<size_t>(std::min<uint64_t>(kChunk, remaining));
        remaining -= c->size;
        c->last = remaining == 0;
        // Advance the cursor by c->size bytes.
        uint64_t left = c->size;
        while (left > 0 && next.op < plan.ops.size()) {
          uint64_t avail = op_bytes(plan, plan.ops[next.op]) - next.offset;
          if (avail <= left) {
            left -= avail;
            ++next.op;
            next.offset = 0;
          } else {
            next.offset += left;
            left = 0;
          }
        }
        return c;
      }) & tbb::make_filter<Chunk*, Chunk*>(tbb::filter_mode::parallel, [&](Chunk* c) {
        fill(plan, tars, c->start, c->size, c->buf.get());
        if (compression == Compression::kGzip)
          c->status =
              deflate_chunk({c->buf.get(), c->size}, encoding.level, c->last, c->packed, c->crc);
        return c;
      }) & tbb::make_filter<Chunk*, Chunk*>(tbb::filter_mode::serial_in_order, [&](Chunk* c) {
        hash.update(std::span<const std::byte>(c->buf.get(), c->size));
        return c;
      }) & tbb::make_filter<Chunk*, void>(tbb::filter_mode::serial_in_order, [&](Chunk* c) {
        if (status.ok()) status = c->status;
        if (status.ok()) {
          if (compression == Compression::kNone) {
            status = out.write(c->buf.get(), c->size);
          } else if (compression == Compression::kGzip) {
            status = out.write(c->packed.data(), c->packed.size());
            crc = crc32_join(crc, c->crc, c->size);
          } else {
            status = zstd.write({c->buf.get(), c->size}, out);
          }
        }
        if (!status.ok()) failed.store(true, std::memory_order_relaxed);
        free_chunks.push(c);
      }));
  DSQ_TRY(status);
  if (compression == Compression::kGzip) {
    std::string trailer = gzip_trailer(crc, plan.layer_size);
    DSQ_TRY(out.write(trailer.data(), trailer.size()));
  }
  if (compression == Compression::kZstd) DSQ_TRY(zstd.finish(out));
  layer.diff_id = hash.finish_digest();
  if (compression == Compression::kNone) {
    layer.digest = layer.diff_id;
    layer.size = plan.layer_size;
  } else {
    layer.digest = hashed.finish();
    layer.size = hashed.written();
  }
  return {};
}

}  // namespace dsq
