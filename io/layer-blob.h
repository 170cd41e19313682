// Layer blobs as stored in an image: plain tar, gzip or zstd (told apart by their magic bytes).
#pragma once

#include <string>

#include "io/mapped-file.h"
#include "io/status.h"

namespace dsq {

enum class Compression { kNone, kGzip, kZstd };

Compression detect_compression(Bytes blob);
// The OCI layer media type for a blob with this compression.
const char* oci_layer_media_type(Compression c);

// Decompresses `blob` (gzip, possibly several members, or zstd, possibly several frames) into
// an anonymous spool file in `dir` and maps it, so the rest of the engine reads every layer as an
// uncompressed tar in memory. In the same pass it computes the SHA-256 of the compressed bytes
// (`blob_digest`) and of the decompressed ones (`diff_id`). `name` prefixes errors.
Status decompress_to_spool(Bytes blob, Compression c, const std::string& name,
                           const std::string& dir, MappedFile& out, std::string& blob_digest,
                           std::string& diff_id);
}  // namespace dsq
