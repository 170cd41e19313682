// Resolution is three linear passes instead of a per-layer replay of the filesystem:
//  1. intern every path (and its ancestors) into one open-addressing table, so node ids are
//     topologically ordered (a parent always has a smaller id than its children);
//  2. record barriers per node (the highest layer that whites out, replaces with a
//     non-directory, or makes opaque) and propagate them down the tree in one forward pass;
//  3. an entry in layer l is visible unless a barrier from a layer above l covers it; the
//     visible entry of highest rank wins its path.
// This is last-writer-wins with exact whiteout semantics, and it is deterministic: nothing
// depends on the order in which layers were indexed.
#include "engine/path-map.h"

#include <xxhash.h>

#include <algorithm>
#include <tuple>
#include <unordered_map>

namespace dsq {

uint32_t arena_add(LayerIndex& layer, std::string_view text) {
  auto offset = static_cast<uint32_t>(layer.arena.size());
  layer.arena.append(text);
  return offset;
}

namespace {

std::string_view parent_of(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

// Open addressing with linear probing; slots hold node id + 1.
class NodeTable {
 public:
  NodeTable(PathMap& map, size_t expected) : map_(map) {
    size_t cap = 1024;
    while (cap < expected * 2) cap <<= 1;
    slots_.assign(cap, 0);
  }

  uint32_t intern(std::string_view path, uint64_t hash) {
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      uint32_t s = slots_[i];
      if (s == 0) break;
      uint32_t id = s - 1;
      if (map_.hash[id] == hash && map_.path[id] == path) return id;
    }
    // New path: make sure the parent exists first so ids stay topologically ordered.
    uint32_t parent = kNoNode;
    if (!path.empty()) {
      std::string_view p = parent_of(path);
      parent = intern(p, XXH3_64bits(p.data(), p.size()));
    }
    auto id = static_cast<uint32_t>(map_.path.size());
    map_.path.push_back(path);
    map_.parent.push_back(parent);
    map_.hash.push_back(hash);
    if (map_.path.size() * 2 > slots_.size()) grow();
    insert_slot(id);
    return id;
  }

 private:
  void insert_slot(uint32_t id) {
    size_t mask = slots_.size() - 1;
    size_t i = map_.hash[id] & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = id + 1;
  }
  void grow() {
    slots_.assign(slots_.size() * 2, 0);
    for (uint32_t id = 0; id < map_.path.size(); ++id) insert_slot(id);
  }
  PathMap& map_;
  std::vector<uint32_t> slots_;
};

void init_barriers(Barriers& b, size_t nodes) {
  b.subtree.assign(nodes, -1);
  b.opaque.assign(nodes, -1);
  b.subtree_eff.assign(nodes, -1);
  b.opaque_above.assign(nodes, -1);
  b.erased_until.assign(nodes, kNoRank);
  b.winner.assign(nodes, kNoRank);
  b.implied.assign(nodes, 0);
}

// Max ranks per node of the group's whiteouts (`erase`) and non-directories (`nondir`).
struct RankBarriers {
  std::vector<uint64_t> erase, nondir;
};

void propagate(Barriers& b, const std::vector<uint32_t>& parent, const RankBarriers& r) {
  for (size_t n = 0; n < parent.size(); ++n) {
    uint32_t p = parent[n];
    if (p == kNoNode) {
      b.subtree_eff[n] = b.subtree[n];
      b.erased_until[n] = r.erase[n];
      continue;
    }
    b.subtree_eff[n] = std::max(b.subtree[n], b.subtree_eff[p]);
    b.opaque_above[n] = std::max(b.opaque[p], b.opaque_above[p]);
    b.erased_until[n] = std::max({r.erase[n], b.erased_until[p], r.nondir[p]});
  }
}

// Whether an entry of `rank` at `node` survives the group's later barriers: whiteouts,
// non-directories and opaque markers of higher layers, and the removals its own layer makes
// after it.
bool visible(const Barriers& b, uint32_t node, uint64_t rank) {
  auto level = static_cast<int16_t>(rank_layer(rank));
  return b.subtree_eff[node] <= level && b.opaque_above[node] <= level &&
         b.erased_until[node] <= rank;
}

Status link_error(const std::vector<LayerIndex>& layers, const PathMap& map, uint64_t rank,
                  uint32_t target, std::string_view what) {
  const LayerIndex& layer = layers[rank_layer(rank)];
  const IndexedEntry& e = map.entry(layers, rank);
  return Status::error(layer.name + ":" + std::string(layer.path(e)) + "@" +
                       std::to_string(e.offset) + ": hard link to '" +
                       std::string(map.path[target]) + "', " + std::string(what));
}

}  // namespace

Status resolve_paths(const std::vector<LayerIndex>& layers, size_t first_squashed, PathMap& map) {
  map = PathMap{};
  size_t total = 0;
  for (const auto& l : layers) total += l.entries.size();
  NodeTable table(map, total + 16);
  map.node_of.resize(layers.size());
  std::unordered_map<uint32_t, std::vector<uint64_t>> link_targets;  // target node -> links

  for (uint32_t li = 0; li < layers.size(); ++li) {
    const LayerIndex& layer = layers[li];
    auto& nodes = map.node_of[li];
    nodes.resize(layer.entries.size());
    for (uint32_t i = 0; i < layer.entries.size(); ++i) {
      const IndexedEntry& e = layer.entries[i];
      nodes[i] = table.intern(layer.path(e), e.hash);
      if (e.kind == EntryKind::kHardlink) {
        std::string_view target = layer.link(e);
        uint32_t t = table.intern(target, XXH3_64bits(target.data(), target.size()));
        link_targets[t].push_back(make_rank(li, i));
      }
    }
  }

  init_barriers(map.lo, map.size());
  init_barriers(map.hi, map.size());
  RankBarriers lo_ranks{std::vector<uint64_t>(map.size(), kNoRank),
                        std::vector<uint64_t>(map.size(), kNoRank)};
  RankBarriers hi_ranks = lo_ranks;
  for (uint32_t li = 0; li < layers.size(); ++li) {
    Barriers& b = li < first_squashed ? map.lo : map.hi;
    RankBarriers& ranks = li < first_squashed ? lo_ranks : hi_ranks;
    auto level = static_cast<int16_t>(li);
    const auto& entries = layers[li].entries;
    for (uint32_t i = 0; i < entries.size(); ++i) {
      uint32_t n = map.node_of[li][i];
      switch (entries[i].kind) {
        case EntryKind::kOpaque:
          b.opaque[n] = std::max(b.opaque[n], level);
          break;
        case EntryKind::kDir:
          break;
        case EntryKind::kWhiteout:
          b.subtree[n] = std::max(b.subtree[n], level);
          ranks.erase[n] = std::max(ranks.erase[n], make_rank(li, i));
          break;
        default:  // non-directories
          b.subtree[n] = std::max(b.subtree[n], level);
          ranks.nondir[n] = std::max(ranks.nondir[n], make_rank(li, i));
          break;
      }
    }
  }
  propagate(map.lo, map.parent, lo_ranks);
  propagate(map.hi, map.parent, hi_ranks);

  // The newest entry that creates each directory as a parent: an opaque marker creates its own
  // directory, any other entry (a whiteout names the path it deletes) its path's parent.
  // Such a directory is not an entry of its layer, so an opaque marker later in the same layer
  // removes it too (unpackers spare only the paths the layer itself unpacked).
  std::vector<uint64_t> lo_created(map.size(), kNoRank), hi_created(map.size(), kNoRank);
  std::vector<uint64_t> lo_opaque(map.size(), kNoRank), hi_opaque(map.size(), kNoRank);
  for (uint32_t li = 0; li < layers.size(); ++li) {
    Barriers& b = li < first_squashed ? map.lo : map.hi;
    auto& created = li < first_squashed ? lo_created : hi_created;
    auto& opaque = li < first_squashed ? lo_opaque : hi_opaque;
    const auto& entries = layers[li].entries;
    for (uint32_t i = 0; i < entries.size(); ++i) {
      uint32_t n = map.node_of[li][i];
      uint32_t dir = entries[i].kind == EntryKind::kOpaque ? n : map.parent[n];
      if (dir != kNoNode) created[dir] = std::max(created[dir], make_rank(li, i));
      if (entries[i].kind == EntryKind::kOpaque) opaque[n] = std::max(opaque[n], make_rank(li, i));
      if (is_marker(entries[i].kind)) continue;
      if (!visible(b, n, make_rank(li, i))) continue;
      b.winner[n] = std::max(b.winner[n], make_rank(li, i));
    }
  }
  for (auto [b, created, opaque] : {std::tuple{&map.lo, &lo_created, &lo_opaque},
                                    std::tuple{&map.hi, &hi_created, &hi_opaque}}) {
    for (size_t n = map.size(); n-- > 1;)  // children after parents: fold the ranks upwards
      if (map.parent[n] != kNoNode)
        (*created)[map.parent[n]] = std::max((*created)[map.parent[n]], (*created)[n]);
    std::vector<uint64_t> opaque_above(map.size(), kNoRank);  // parents first: fold downwards
    for (uint32_t n = 1; n < map.size(); ++n) {
      uint32_t p = map.parent[n];
      if (p != kNoNode) opaque_above[n] = std::max((*opaque)[p], opaque_above[p]);
      uint64_t r = (*created)[n];
      b->implied[n] = r != kNoRank && visible(*b, n, r) && opaque_above[n] <= r;
    }
  }

  // Hard links: the content a link shares is that of the newest earlier entry at its target.
  if (!link_targets.empty()) {
    std::unordered_map<uint32_t, std::vector<uint64_t>> candidates;
    for (const auto& [node, ranks] : link_targets) candidates[node];
    for (uint32_t li = 0; li < layers.size(); ++li) {
      const auto& entries = layers[li].entries;
      for (uint32_t i = 0; i < entries.size(); ++i) {
        if (is_marker(entries[i].kind)) continue;
        auto it = candidates.find(map.node_of[li][i]);
        if (it != candidates.end()) it->second.push_back(make_rank(li, i));
      }
    }
    std::vector<std::pair<uint64_t, uint32_t>> all;  // (link rank, target node), rank order
    for (const auto& [node, ranks] : link_targets)
      for (uint64_t r : ranks) all.emplace_back(r, node);
    std::sort(all.begin(), all.end());
    std::unordered_map<uint64_t, uint64_t> source_of;  // link rank -> source rank
    for (const auto& [rank, node] : all) {
      const auto& cands = candidates[node];  // ascending rank
      auto it = std::lower_bound(cands.begin(), cands.end(), rank);
      if (it == cands.begin())
        return link_error(layers, map, rank, node, "which no earlier entry provides");
      uint64_t src = *(it - 1);
      if (map.entry(layers, src).kind == EntryKind::kDir)
        return link_error(layers, map, rank, node, "which is a directory");
      if (map.entry(layers, src).kind == EntryKind::kHardlink) src = source_of.at(src);
      source_of[rank] = src;
      if (rank_layer(rank) >= first_squashed) map.links.push_back({rank, src});
    }
  }
  return {};
}

}  // namespace dsq
