// Builds docker-save archives from a description: the project's own image generator, used by
// tools/demo, the end-to-end tests and the benchmarks (no daemon needed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/layer-blob.h"
#include "io/status.h"

namespace dsq::builder {

enum class Kind { kFile, kDir, kSymlink, kHardlink, kWhiteout, kOpaque, kFifo };

struct Entry {
  Kind kind = Kind::kFile;
  std::string path;     // name as written into the tar (not normalised)
  std::string content;  // file data; link target for links
  uint32_t mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1700000000;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

struct Layer {
  std::vector<Entry> entries;
  Compression compression = Compression::kNone;
  bool empty = false;  // an empty history entry (ENV, CMD, ...), no layer
  std::string created_by;
};

enum class Layout { kV12, kOci };  // Docker 1.10-24, or Docker 25+ (OCI layout + manifest.json)

struct ImageSpec {
  std::vector<Layer> layers;
  Layout layout = Layout::kOci;
  std::string tag = "sample:latest";
  std::string config_extra;  // extra top-level config fields, e.g. "\"config\":{...}"
};

// The layer tar exactly as it will be stored uncompressed.
std::string layer_tar(const Layer& layer);

Status write_archive(const ImageSpec& spec, const std::string& path);

// Spec text, one directive per line (see tools/gen-image.cc for the grammar).
Status parse_spec(const std::string& text, ImageSpec& out);

}  // namespace dsq::builder
