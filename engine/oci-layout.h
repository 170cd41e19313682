// Reading an OCI image layout (index.json, nested image indexes, manifests) down to one image:
// its config and layer descriptors. Every index and manifest blob is checked against its digest
// and size. Blobs come through a lookup, so a directory and an archive read alike.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/layer-blob.h"
#include "io/mapped-file.h"
#include "io/status.h"

namespace dsq {

struct Platform {
  std::string os, architecture, variant;
  std::string text() const;  // "linux/arm64/v8"
};

// The platform this binary runs on (linux/amd64, linux/arm64, ...).
Platform host_platform();
// "os/arch[/variant]".
Status parse_platform(const std::string& text, Platform& out);

struct OciLayer {
  std::string digest;
  uint64_t size = 0;
  Compression compression = Compression::kNone;
};

struct OciImage {
  std::string config_digest;
  uint64_t config_size = 0;
  std::vector<OciLayer> layers;
  std::string image_name;  // io.containerd.image.name or the ref name, "" when unnamed
};

// `path` ("index.json", "blobs/sha256/<hex>") -> its bytes, or an error naming it.
using BlobLookup = std::function<Status(const std::string& path, Bytes& out)>;

// Picks the image: by `ref` (org.opencontainers.image.ref.name or io.containerd.image.name)
// when given; otherwise the only one. Indexes are descended by `platform`; attestation
// manifests are skipped. `where` prefixes errors.
Status read_oci_layout(const std::string& where, const BlobLookup& lookup, const std::string& ref,
                       const Platform& platform, OciImage& out);

// "blobs/<algorithm>/<hex>" for a well-formed sha256 digest, "" otherwise.
std::string blob_path_of(const std::string& digest);

}  // namespace dsq
