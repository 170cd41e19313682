// Indexing reads only tar headers (the tar reader jumps over data without touching it), so the
// bytes of entries that will not survive are never faulted in. Each layer is one TBB task with
// its own reader; decompression of compressed blobs and --verify hashing are tasks of their
// own, so on N cores N layers progress at once. Errors are collected per task and the one
// of the lowest layer is reported, so the message does not depend on scheduling.
#include <tbb/parallel_for.h>
#include <xxhash.h>

#include <algorithm>

#include "engine/passes.h"
#include "io/sha256.h"
#include "io/tar-reader.h"
#include "io/temp-files.h"

namespace dsq {

bool normalise_path(std::string_view raw, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    if (c == "..") return false;
    if (!c.empty() && c != ".") {
      if (!out.empty()) out += '/';
      out += c;
    }
    i = j + 1;
  }
  return true;
}

namespace {

constexpr uint64_t kReleaseStep = 8u << 20;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueName = ".wh..wh..opq";

Status entry_error(const std::string& layer, std::string_view path, uint64_t offset,
                   const std::string& what) {
  return Status::error(layer + ":" + std::string(path) + "@" + std::to_string(offset) + ": " +
                       what);
}

}  // namespace

Status index_layer(Bytes tar, const std::string& name, LayerIndex& out) {
  out = LayerIndex{};
  out.name = name;
  TarReader reader(tar, name);
  std::string path, link;
  uint64_t released = 0;
  bool last_open = false;  // the last record's end is the next header's offset
  for (;;) {
    TarEntry e;
    bool done = false;
    DSQ_TRY(reader.next(e, done));
    if (last_open) out.entries.back().end = done ? reader.end_offset() : e.offset;
    last_open = false;
    if (done) break;
    if (e.offset - released >= kReleaseStep) {
      release_pages(tar.data() + released, tar.data() + e.offset);
      released = e.offset & ~uint64_t{4095};
    }
    if (!normalise_path(e.path, path))
      return entry_error(name, e.path, e.offset, "path escapes the root ('..' component)");
    IndexedEntry rec{};
    rec.offset = e.offset;
    rec.size = e.size;
    rec.kind = static_cast<EntryKind>(e.type);  // the tar types come first in EntryKind
    size_t slash = path.rfind('/');
    std::string_view base = slash == std::string::npos ? std::string_view(path)
                                                       : std::string_view(path).substr(slash + 1);
    if (base.starts_with(kWhiteoutPrefix)) {
      std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
      if (base == kOpaqueName) {
        rec.kind = EntryKind::kOpaque;
        path = dir;
      } else if (base.substr(kWhiteoutPrefix.size()).starts_with(kWhiteoutPrefix)) {
        continue;  // other .wh..wh.* names are AUFS metadata, which appliers skip
      } else {
        std::string_view target = base.substr(kWhiteoutPrefix.size());
        if (target.empty() || target == "." || target == "..")
          return entry_error(name, e.path, e.offset, "invalid whiteout name");
        rec.kind = EntryKind::kWhiteout;
        path = dir.empty() ? std::string(target) : dir + "/" + std::string(target);
      }
    }
    if (rec.kind == EntryKind::kHardlink) {
      if (!normalise_path(e.link, link))
        return entry_error(name, e.path, e.offset, "hard link target escapes the root");
      if (link.empty() || link == path)
        return entry_error(name, e.path, e.offset, "hard link to itself or to the root");
      if (link.size() > 0xffff) return entry_error(name, e.path, e.offset, "link target too long");
      rec.link = arena_add(out, link);
      rec.link_len = static_cast<uint16_t>(link.size());
    }
    if (path.size() > 0xffff) return entry_error(name, e.path, e.offset, "name too long");
    if (out.arena.size() > 0xffff0000u)
      return entry_error(name, e.path, e.offset, "too many names in one layer");
    rec.hash = XXH3_64bits(path.data(), path.size());
    rec.path = arena_add(out, path);
    rec.path_len = static_cast<uint16_t>(path.size());
    out.entries.push_back(rec);
    last_open = true;
  }
  release_pages(tar.data() + released, tar.data() + tar.size());
  return {};
}

namespace {

enum class JobKind { kIndex, kVerify };

struct Job {
  size_t layer;
  JobKind kind;
  uint64_t bytes;
};

Status verify_digest(const LayerSource& layer) {
  Sha256 hash;
  constexpr size_t kStep = 8u << 20;
  for (size_t off = 0; off < layer.tar.size(); off += kStep) {
    auto piece = layer.tar.subspan(off, std::min(kStep, layer.tar.size() - off));
    hash.update(piece);
    release_pages(piece.data(), piece.data() + piece.size());
  }
  std::string digest = hash.finish_digest();
  if (digest != layer.diff_id)
    return Status::error(layer.name + ": layer content has digest " + digest +
                         " but the config's diff_id is " + layer.diff_id);
  return {};
}

// Decompresses a compressed layer into a mapped spool; its blob digest (when the layout names
// it) and its diff_id are checked in the same pass.
Status prepare_compressed(const Context& ctx, LayerSource& layer) {
  std::string blob_digest, diff_id;
  DSQ_TRY(decompress_to_spool(layer.blob, layer.compression, layer.name, temp_dir(ctx.opts.tmp_dir),
                              layer.spool, blob_digest, diff_id));
  layer.tar = layer.spool.bytes();
  if (!layer.blob_digest.empty() && blob_digest != layer.blob_digest)
    return Status::error(layer.name + ": blob has digest " + blob_digest + " but is named " +
                         layer.blob_digest);
  layer.blob_digest = blob_digest;
  if (diff_id != layer.diff_id)
    return Status::error(layer.name + ": layer content has digest " + diff_id +
                         " but the config's diff_id is " + layer.diff_id);
  return {};
}

}  // namespace

Status index_layers(Context& ctx) {
  const size_t n = ctx.layer_count();
  const size_t first = ctx.selection.first_layer;
  // Kept layers are indexed too (headers only): they tell which markers the new layer needs.
  std::vector<Job> jobs;
  for (size_t i = 0; i < n; ++i) {
    const LayerSource& l = ctx.image.layers[i];
    jobs.push_back({i, JobKind::kIndex, l.blob.size()});
    if (ctx.opts.verify && l.compression == Compression::kNone)
      jobs.push_back({i, JobKind::kVerify, l.blob.size()});
  }
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const Job& a, const Job& b) { return a.bytes > b.bytes; });
  ctx.index.assign(n, LayerIndex{});
  std::vector<Status> index_status(n), verify_status(n);
  tbb::parallel_for(
      size_t{0}, jobs.size(),
      [&](size_t j) {
        const Job& job = jobs[j];
        LayerSource& layer = ctx.image.layers[job.layer];
        if (job.kind == JobKind::kVerify) {
          verify_status[job.layer] = verify_digest(layer);
          return;
        }
        if (layer.compression != Compression::kNone) {
          Status st = prepare_compressed(ctx, layer);
          if (!st.ok()) {
            index_status[job.layer] = st;
            return;
          }
        }
        index_status[job.layer] = index_layer(layer.tar, layer.name, ctx.index[job.layer]);
      },
      tbb::simple_partitioner());
  for (size_t i = 0; i < n; ++i) {
    if (!verify_status[i].ok()) return verify_status[i];
    if (!index_status[i].ok()) return index_status[i];
  }
  for (size_t i = first; i < n; ++i) ctx.result.input_bytes += ctx.image.layers[i].tar.size();
  return {};
}

}  // namespace dsq
