// Planning the new layer: which entries survive, in which order, and which headers must be
// written anew (materialised hard links, whiteout and opaque markers for a partial squash,
// missing parent directories). The result is a list of byte-range copies that the emitter
// streams without making any further decision.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "engine/layer-index.h"
#include "engine/path-map.h"
#include "io/mapped-file.h"
#include "io/status.h"

namespace dsq {

constexpr uint32_t kNoHeader = 0xffffffffu;

// Output bytes: headers[header] (if any), then `length` bytes of layer `layer` from `offset`,
// then `pad` zero bytes.
struct EmitOp {
  uint64_t offset;
  uint64_t length;
  uint32_t layer;
  uint32_t header;
  uint32_t pad;
};

enum class ItemRole : uint8_t { kCopy, kMaterialised, kRelinked, kParent, kWhiteout, kOpaque };

struct OutputItem {
  std::string_view path;  // normalised; the ordering key
  uint64_t rank;          // the winning entry, kNoRank for synthesised items
  ItemRole role;
};

struct PlanStats {
  uint64_t entries_in = 0;  // entries of the squashed layers, markers included
  uint64_t entries_out = 0;
  uint64_t copied = 0;        // entries copied byte-for-byte
  uint64_t materialised = 0;  // hard links turned into files or re-pointed
  uint64_t parents = 0;
  uint64_t whiteouts = 0;
  uint64_t opaques = 0;
};

struct Plan {
  std::vector<OutputItem> items;  // in output order
  std::vector<EmitOp> ops;        // one per item
  std::vector<std::string> headers;
  std::deque<std::string> synthetic_paths;
  uint64_t layer_size = 0;  // exact size of the new layer tar, end blocks included
  PlanStats stats;
};

// Output order: parents before children; within a directory the opaque marker first, then
// whiteouts, then the other names in byte order.
bool output_path_less(std::string_view a, std::string_view b);

// `tars` are the uncompressed layer tars (for re-reading headers that must be re-encoded);
// `synthetic_mtime` stamps headers that have no source entry.
Status plan_output(const std::vector<LayerIndex>& layers, const std::vector<Bytes>& tars,
                   const std::vector<std::string>& layer_names, const PathMap& map,
                   size_t first_squashed, int64_t synthetic_mtime, Plan& plan);

}  // namespace dsq
