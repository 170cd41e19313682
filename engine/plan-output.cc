// Planning runs once over the path map's nodes (linear), sorts the survivors (parallel sort),
// then settles hard link groups in output order: the first member of a group carries the data
// and the others link to it, so a target always precedes its links even when a link's name
// sorts before its original target. Only those members, markers and missing parents get new
// headers; everything else is a byte-range copy of the original entry.
#include "engine/plan-output.h"

#include <archive_entry.h>
#include <tbb/parallel_sort.h>

#include <unordered_map>

#include "io/tar-header.h"

namespace dsq {

namespace {

int marker_class(std::string_view component) {
  if (component == ".wh..wh..opq") return 0;
  if (component.substr(0, 4) == ".wh.") return 1;
  return 2;
}

bool is_dir_kind(EntryKind k) { return k == EntryKind::kDir; }

}  // namespace

bool output_path_less(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return a.empty() && !b.empty();
  size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  if (i == a.size() && i == b.size()) return false;
  size_t slash = a.substr(0, i).rfind('/');
  size_t start = slash == std::string_view::npos ? 0 : slash + 1;
  size_t end_a = std::min(a.find('/', start), a.size());
  size_t end_b = std::min(b.find('/', start), b.size());
  int ca = marker_class(a.substr(start, end_a - start));
  int cb = marker_class(b.substr(start, end_b - start));
  if (ca != cb) return ca < cb;
  bool a_done = i == end_a, b_done = i == end_b;
  if (a_done && b_done) return i == a.size();
  if (a_done || b_done) return a_done;
  return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
}

namespace {

struct Planner {
  const std::vector<LayerIndex>& layers;
  const std::vector<Bytes>& tars;
  const std::vector<std::string>& names;
  const PathMap& map;
  size_t first_squashed;
  int64_t mtime;
  Plan& plan;

  // What the new layer holds at a node: 0 nothing, 1 a directory, 2 anything else.
  std::vector<uint8_t> out_kind = {};
  std::vector<uint8_t> base_present = {}, base_dir = {}, base_children = {};
  std::unordered_map<uint64_t, uint64_t> source_of = {};        // link rank -> source rank
  std::unordered_map<uint64_t, std::string_view> carrier = {};  // source rank -> carrier path

  const IndexedEntry& entry(uint64_t rank) const { return map.entry(layers, rank); }

  void add(std::string_view path, uint64_t rank, ItemRole role) {
    plan.items.push_back({path, rank, role});
  }

  std::string_view keep(std::string s) {
    plan.synthetic_paths.push_back(std::move(s));
    return plan.synthetic_paths.back();
  }

  void collect_winners() {
    out_kind.assign(map.size(), 0);
    for (uint32_t n = 0; n < map.size(); ++n) {
      uint64_t r = map.hi.winner[n];
      if (r == kNoRank) continue;
      out_kind[n] = is_dir_kind(entry(r).kind) ? 1 : 2;
      add(map.path[n], r, ItemRole::kCopy);
    }
  }

  // Directories the squashed layers create only as parents of entries that are gone since.
  void add_implied_directories() {
    for (uint32_t n = 1; n < map.size(); ++n) {
      if (out_kind[n] != 0 || !map.hi.implied[n] || exists_below(n)) continue;
      out_kind[n] = 1;
      add(map.path[n], kNoRank, ItemRole::kParent);
      ++plan.stats.parents;
    }
  }

  // The kept base as the squashed layers found it: which paths exist (with implicit parents).
  void collect_base() {
    base_present.assign(map.size(), 0);
    base_dir.assign(map.size(), 0);
    base_children.assign(map.size(), 0);
    if (first_squashed == 0) return;
    for (uint32_t n = 0; n < map.size(); ++n) {
      uint64_t r = map.lo.winner[n];
      const bool implied = r == kNoRank && map.lo.implied[n];
      if (r == kNoRank && !implied) continue;
      base_dir[n] = implied || is_dir_kind(entry(r).kind);
      for (uint32_t a = n; a != kNoNode && !base_present[a]; a = map.parent[a]) {
        base_present[a] = 1;
        if (a != n) base_dir[a] = base_dir[a] || map.lo.winner[a] == kNoRank;
      }
    }
    for (uint32_t n = 0; n < map.size(); ++n)
      if (base_present[n] && map.parent[n] != kNoNode) base_children[map.parent[n]] = 1;
  }

  bool exists_below(uint32_t n) const { return base_present[n] && !map.hi.hides(n); }

  void add_missing_parents() {
    size_t count = plan.items.size();
    for (size_t i = 0; i < count; ++i) {
      uint32_t n = map.node_of[rank_layer(plan.items[i].rank)][rank_ordinal(plan.items[i].rank)];
      for (uint32_t a = map.parent[n]; a != kNoNode && !map.path[a].empty(); a = map.parent[a]) {
        if (out_kind[a] != 0 || exists_below(a)) break;
        out_kind[a] = 1;
        add(map.path[a], kNoRank, ItemRole::kParent);
        ++plan.stats.parents;
      }
    }
  }

  void add_markers() {
    if (first_squashed == 0) return;
    for (uint32_t n = 0; n < map.size(); ++n) {
      if (!base_present[n] || map.path[n].empty()) continue;
      uint32_t p = map.parent[n];
      bool ancestor_hidden =
          (p != kNoNode && map.hi.subtree_eff[p] >= 0) || map.hi.opaque_above[n] >= 0;
      if (ancestor_hidden) continue;
      bool needs_opaque = false;
      if (map.hi.subtree[n] >= 0) {
        if (out_kind[n] == 0) {
          std::string_view path = map.path[n];
          size_t slash = path.rfind('/');
          std::string marker = slash == std::string_view::npos
                                   ? ".wh." + std::string(path)
                                   : std::string(path.substr(0, slash + 1)) + ".wh." +
                                         std::string(path.substr(slash + 1));
          add(keep(std::move(marker)), kNoRank, ItemRole::kWhiteout);
          ++plan.stats.whiteouts;
          continue;
        }
        needs_opaque = out_kind[n] == 1 && base_dir[n] && base_children[n];
      } else {
        needs_opaque = map.hi.opaque[n] >= 0 && base_children[n];
      }
      if (needs_opaque) {
        add(keep(std::string(map.path[n]) + "/.wh..wh..opq"), kNoRank, ItemRole::kOpaque);
        ++plan.stats.opaques;
      }
    }
  }

  Status reread(uint64_t rank, EntryPtr& out) const {
    const IndexedEntry& e = entry(rank);
    return read_entry_at(tars[rank_layer(rank)], e.offset, names[rank_layer(rank)], out);
  }

  uint32_t add_header(archive_entry* e) {
    plan.headers.push_back(encode_tar_header(e));
    return static_cast<uint32_t>(plan.headers.size() - 1);
  }

  // Hard link groups in output order: the first member carries the source's content, the
  // others link to it.
  void settle_links() {
    std::unordered_map<uint64_t, bool> is_source;
    for (const HardLink& l : map.links) {
      source_of[l.rank] = l.source;
      is_source[l.source] = true;
    }
    for (OutputItem& item : plan.items) {
      if (item.rank == kNoRank) continue;
      auto it = source_of.find(item.rank);
      if (it == source_of.end() && !is_source.count(item.rank)) continue;
      uint64_t source = it == source_of.end() ? item.rank : it->second;
      auto [slot, first] = carrier.try_emplace(source, item.path);
      if (first) {
        if (item.rank != source) item.role = ItemRole::kMaterialised;
      } else if (item.rank == source ||
                 layers[rank_layer(item.rank)].link(entry(item.rank)) != slot->second) {
        item.role = ItemRole::kRelinked;
      }
    }
  }

  Status make_ops() {
    plan.ops.reserve(plan.items.size());
    uint64_t size = 0;
    for (const OutputItem& item : plan.items) {
      EmitOp op{0, 0, 0, kNoHeader, 0};
      switch (item.role) {
        case ItemRole::kCopy: {
          const IndexedEntry& e = entry(item.rank);
          op = {e.offset, e.end - e.offset, rank_layer(item.rank), kNoHeader, 0};
          ++plan.stats.copied;
          break;
        }
        case ItemRole::kMaterialised: {
          // Appliers give the shared inode the attributes of the link's own header (Docker
          // chmods, chowns and stamps the target when it creates a link), so the file takes
          // the link's header with the source's content; a link to a non-file takes the
          // source's header.
          uint64_t src = source_of.at(item.rank);
          const IndexedEntry& s = entry(src);
          EntryPtr e;
          DSQ_TRY(reread(s.kind == EntryKind::kFile ? item.rank : src, e));
          archive_entry_copy_pathname(e.get(), std::string(item.path).c_str());
          archive_entry_set_hardlink(e.get(), nullptr);
          uint64_t data = s.kind == EntryKind::kFile ? s.size : 0;
          if (s.kind == EntryKind::kFile) archive_entry_set_filetype(e.get(), AE_IFREG);
          archive_entry_set_size(e.get(), static_cast<la_int64_t>(data));
          op = {s.end - tar_padded(data), data, rank_layer(src), add_header(e.get()),
                static_cast<uint32_t>(tar_padding(data))};
          ++plan.stats.materialised;
          break;
        }
        case ItemRole::kRelinked: {
          auto it = source_of.find(item.rank);
          uint64_t src = it == source_of.end() ? item.rank : it->second;
          EntryPtr e;
          DSQ_TRY(reread(item.rank, e));
          archive_entry_set_size(e.get(), 0);
          archive_entry_copy_hardlink(e.get(), std::string(carrier.at(src)).c_str());
          op.header = add_header(e.get());
          ++plan.stats.materialised;
          break;
        }
        case ItemRole::kParent: {
          EntryPtr e = make_entry(item.path, true, 0, mtime, 0755);
          op.header = add_header(e.get());
          break;
        }
        case ItemRole::kWhiteout:
        case ItemRole::kOpaque: {
          EntryPtr e = make_entry(item.path, false, 0, mtime, 0);
          op.header = add_header(e.get());
          break;
        }
      }
      size += op.length + op.pad + (op.header == kNoHeader ? 0 : plan.headers[op.header].size());
      plan.ops.push_back(op);
    }
    plan.layer_size = size + 1024;  // two zero blocks end the archive
    plan.stats.entries_out = plan.items.size();
    return {};
  }
};

}  // namespace

Status plan_output(const std::vector<LayerIndex>& layers, const std::vector<Bytes>& tars,
                   const std::vector<std::string>& layer_names, const PathMap& map,
                   size_t first_squashed, int64_t synthetic_mtime, Plan& plan) {
  plan = Plan{};
  for (size_t l = first_squashed; l < layers.size(); ++l)
    plan.stats.entries_in += layers[l].entries.size();
  Planner p{layers, tars, layer_names, map, first_squashed, synthetic_mtime, plan};
  p.collect_winners();
  p.collect_base();
  p.add_missing_parents();
  p.add_implied_directories();
  p.add_markers();
  tbb::parallel_sort(
      plan.items.begin(), plan.items.end(),
      [](const OutputItem& a, const OutputItem& b) { return output_path_less(a.path, b.path); });
  p.settle_links();
  return p.make_ops();
}

}  // namespace dsq
