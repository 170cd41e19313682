// The path map: every distinct path of the indexed layers as a node (parents before children),
// with the barriers that whiteouts, opaque markers and non-directories put on lower layers, and
// the winning entry per path. Layers [0, first_squashed) are the kept base ("lo"), the rest are
// squashed ("hi"); each group is resolved on its own so the planner can tell what the squashed
// layers hide in the base.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/layer-index.h"
#include "io/status.h"

namespace dsq {

constexpr uint32_t kNoNode = 0xffffffffu;
constexpr size_t kMaxLayers = 32767;  // barriers hold layer numbers as int16_t
constexpr uint64_t kNoRank = 0;

// rank = ((layer + 1) << 32) | ordinal: the newest layer and, within it, the later entry wins;
// 0 means "no entry".
inline uint64_t make_rank(uint32_t layer, uint32_t ordinal) {
  return (uint64_t{layer + 1} << 32) | ordinal;
}
inline uint32_t rank_layer(uint64_t rank) { return static_cast<uint32_t>(rank >> 32) - 1; }
inline uint32_t rank_ordinal(uint64_t rank) { return static_cast<uint32_t>(rank); }

// Per layer group: the highest layer holding a barrier, -1 for none.
struct Barriers {
  std::vector<int16_t> subtree;       // whiteout of, or non-directory at, this path
  std::vector<int16_t> opaque;        // opaque marker in this directory
  std::vector<int16_t> subtree_eff;   // max subtree barrier at this path or an ancestor
  std::vector<int16_t> opaque_above;  // max opaque barrier at a proper ancestor
  // Within one layer, tar order: an entry is hidden by a later whiteout of it or of an
  // ancestor, or a later non-directory at an ancestor (as unpackers apply a tar entry by
  // entry). This is the highest such rank; opaque markers cover the whole layer regardless.
  std::vector<uint64_t> erased_until;
  std::vector<uint64_t> winner;  // rank of the visible winning entry, kNoRank for none
  // A directory that exists without an entry of its own: unpackers create the parents of every
  // entry (markers included), and it stays unless removed later. Meaningful where no winner.
  std::vector<uint8_t> implied;
  // True when something of this group hides lower content at or above `node`.
  bool hides(uint32_t node) const { return subtree_eff[node] >= 0 || opaque_above[node] >= 0; }
};

struct HardLink {
  uint64_t rank;    // the link entry
  uint64_t source;  // rank of the entry whose content the link shares (never itself a link)
};

struct PathMap {
  std::vector<std::string_view> path;
  std::vector<uint32_t> parent;
  std::vector<uint64_t> hash;
  std::vector<std::vector<uint32_t>> node_of;  // [layer][ordinal] -> node
  Barriers lo, hi;
  std::vector<HardLink> links;  // every hard link entry of the squashed layers, by rank

  const IndexedEntry& entry(const std::vector<LayerIndex>& layers, uint64_t rank) const {
    return layers[rank_layer(rank)].entries[rank_ordinal(rank)];
  }
  size_t size() const { return path.size(); }
};

// Builds the map. Fails when a hard link's target has no earlier entry.
Status resolve_paths(const std::vector<LayerIndex>& layers, size_t first_squashed, PathMap& map);

}  // namespace dsq
