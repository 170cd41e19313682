// The index of one layer tar: a packed record per entry and the normalised paths in an arena.
// Built concurrently, one layer per task; read by the path map and the emitter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/tar-reader.h"

namespace dsq {

enum class EntryKind : uint8_t { kFile, kDir, kSymlink, kHardlink, kOther, kWhiteout, kOpaque };

static_assert(static_cast<int>(EntryKind::kOther) == static_cast<int>(TarType::kOther) &&
                  static_cast<int>(EntryKind::kHardlink) == static_cast<int>(TarType::kHardlink),
              "EntryKind starts with TarType's values, in the same order");

inline bool is_marker(EntryKind k) { return k == EntryKind::kWhiteout || k == EntryKind::kOpaque; }

struct IndexedEntry {
  uint64_t offset;  // first byte of the header chain in the layer tar
  uint64_t end;     // one past the entry's padding
  uint64_t size;    // data bytes (regular files), which end at end - padding
  uint64_t hash;    // XXH3 of the normalised path
  uint32_t path;    // normalised path: arena offset. For kWhiteout the path it deletes,
                    // for kOpaque the directory it makes opaque.
  uint32_t link;    // normalised hard link target (kHardlink): arena offset
  uint16_t path_len;
  uint16_t link_len;
  EntryKind kind;
};
static_assert(sizeof(IndexedEntry) == 48, "one record per tar entry: keep it packed");

struct LayerIndex {
  std::string name;  // the layer as error messages name it
  std::vector<IndexedEntry> entries;
  std::string arena;
  std::string_view path(const IndexedEntry& e) const { return {arena.data() + e.path, e.path_len}; }
  std::string_view link(const IndexedEntry& e) const { return {arena.data() + e.link, e.link_len}; }
};

// Appends `text` to the layer's arena and returns its offset.
uint32_t arena_add(LayerIndex& layer, std::string_view text);

}  // namespace dsq

#include "io/mapped-file.h"
#include "io/status.h"

namespace dsq {

// Indexes one uncompressed layer tar: normalises names, classifies whiteouts and opaque
// markers, records byte ranges. Rejects names that escape the root. `name` prefixes errors.
// Input pages are released from the resident set as the walk passes them.
Status index_layer(Bytes tar, const std::string& name, LayerIndex& out);

// Normalises a tar member name: "./a//b/" -> "a/b"; "", ".", "/" -> "" (the root). Fails on a
// ".." component.
bool normalise_path(std::string_view raw, std::string& out);

}  // namespace dsq
