// libFuzzer target: one layer blob as stored in an image (plain tar, gzip or zstd), decompressed
// and indexed as the engine does. Any input must end in a Status, never a crash or a hang, and
// an index that is returned must describe byte ranges that lie in the tar, in order.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "engine/layer-index.h"
#include "io/layer-blob.h"
#include "io/mapped-file.h"
#include "io/temp-files.h"

namespace {

// What the writer relies on: entries tile the tar in order, each within its bounds.
void check_index(const dsq::Bytes tar, const dsq::Status& st, const dsq::LayerIndex& index) {
  if (!st.ok()) return;
  uint64_t prev_end = 0;
  for (const auto& e : index.entries) {
    if (e.offset < prev_end || e.end <= e.offset || e.end > tar.size() ||
        e.size + 512 > e.end - e.offset)
      abort();
    prev_end = e.end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsq;
  if (size == 0) return 0;
  // The engine reads layers from file mappings (it drops consumed pages with MADV_DONTNEED).
  int fd = memfd_create("layer", 0);
  if (write(fd, data, size) != static_cast<ssize_t>(size)) abort();
  MappedFile blob;
  if (!blob.open_fd(fd, "fuzz").ok()) abort();
  LayerIndex index;
  Compression c = detect_compression(blob.bytes());
  if (c == Compression::kNone) {
    check_index(blob.bytes(), index_layer(blob.bytes(), "fuzz", index), index);
    return 0;
  }
  MappedFile spool;
  std::string blob_digest, diff_id;
  if (decompress_to_spool(blob.bytes(), c, "fuzz", temp_dir(""), spool, blob_digest, diff_id)
          .ok() &&
      !spool.empty())
    check_index(spool.bytes(), index_layer(spool.bytes(), "fuzz", index), index);
  return 0;
}
