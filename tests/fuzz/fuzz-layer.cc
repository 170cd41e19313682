// libFuzzer target: one layer blob as stored in an image (plain tar, gzip or zstd), decompressed
// and indexed as the engine does. Any input must end in a Status, never a crash or a hang.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "engine/layer-index.h"
#include "io/layer-blob.h"
#include "io/mapped-file.h"
#include "io/temp-files.h"

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
    (void)index_layer(blob.bytes(), "fuzz", index);
    return 0;
  }
  MappedFile spool;
  std::string blob_digest, diff_id;
  if (decompress_to_spool(blob.bytes(), c, "fuzz", temp_dir(""), spool, blob_digest, diff_id)
          .ok() &&
      !spool.empty())
    (void)index_layer(spool.bytes(), "fuzz", index);
  return 0;
}
