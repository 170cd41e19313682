// Decompression goes through libarchive's "raw" format with its gzip and zstd filters: one
// archive object per call, so layers decompress concurrently on separate tasks.
#include "io/layer-blob.h"

#include <archive.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "io/sha256.h"
#include "io/temp-files.h"

namespace dsq {

Compression detect_compression(Bytes blob) {
  auto b = reinterpret_cast<const unsigned char*>(blob.data());
  if (blob.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Compression::kGzip;
  if (blob.size() >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
    return Compression::kZstd;
  return Compression::kNone;
}

const char* oci_layer_media_type(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::kNone:
      break;
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

Status decompress_to_spool(Bytes blob, const std::string& name, const std::string& dir,
                           MappedFile& out, std::string& uncompressed_digest) {
  int fd = -1;
  DSQ_TRY(create_anonymous_file(dir, fd));
  archive* r = archive_read_new();
  archive_read_support_filter_gzip(r);
  archive_read_support_filter_zstd(r);
  archive_read_support_format_raw(r);
  archive_read_open_memory(r, blob.data(), blob.size());
  archive_entry* e = nullptr;
  Status st;
  Sha256 hash;
  if (archive_read_next_header(r, &e) != ARCHIVE_OK) {
    st = Status::error(name + "@0: cannot decompress layer: " +
                       (archive_error_string(r) ? archive_error_string(r) : "unknown format"));
  } else {
    std::vector<char> buf(1 << 20);
    uint64_t total = 0;
    uint64_t released = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(r, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        st = Status::error(name + "@" + std::to_string(total) + ": corrupt compressed layer: " +
                           (archive_error_string(r) ? archive_error_string(r) : "read error"));
        break;
      }
      hash.update(std::string_view(buf.data(), static_cast<size_t>(n)));
      // Drop the compressed pages the decoder has consumed (keeping a margin for its look-ahead).
      auto consumed = static_cast<uint64_t>(archive_filter_bytes(r, -1));
      if (consumed > released + (16u << 20)) {
        release_pages(blob.data() + released, blob.data() + consumed - (1u << 20));
        released = consumed - (1u << 20);
      }
      st = write_all(fd, buf.data(), static_cast<size_t>(n), dir + "/(spool of " + name + ")");
      if (!st.ok()) break;
      total += static_cast<uint64_t>(n);
    }
  }
  archive_read_free(r);
  release_pages(blob.data(), blob.data() + blob.size());
  if (!st.ok()) {
    close(fd);
    return st;
  }
  uncompressed_digest = hash.finish_digest();
  return out.open_fd(fd, name);
}

}  // namespace dsq
