// The output archive holds both layouts Docker 25+ writes: manifest.json (+ repositories when
// tagged) for the classic store and oci-layout + index.json + blobs/sha256/* for the containerd
// store, with every blob stored once. The new layer's tar header must precede its bytes, but its
// digest is known only after them:
// - into a file, the uncompressed layer is streamed behind a placeholder header that is rewritten
//   in place once the digest is known (same name length, same size: the same 512 bytes);
// - a compressed layer (size unknown in advance) is compressed into an anonymous spool first;
// - a load stream to the daemon (no file to rewrite) names the uncompressed layer
//   squashed/layer.tar and carries only manifest.json, which is all a classic store reads, and
//   leaves out the kept layers the daemon already has.
// A file is written under a temporary name and renamed; standard output gets an archive built in
// an anonymous temp file.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "engine/config-rewrite.h"
#include "engine/emit-layer.h"
#include "engine/image-ref.h"
#include "engine/passes.h"
#include "io/compress.h"
#include "io/json.h"
#include "io/sha256.h"
#include "io/tar-header.h"
#include "io/temp-files.h"

namespace dsq {

namespace {

class ArchiveWriter {
 public:
  ArchiveWriter(Sink& sink, int64_t mtime) : sink_(sink), mtime_(mtime) {}

  Status add(const std::string& name, std::string_view data) {
    return add_bytes(name, {reinterpret_cast<const std::byte*>(data.data()), data.size()});
  }
  Status add_bytes(const std::string& name, Bytes data) {
    DSQ_TRY(header(name, data.size()));
    DSQ_TRY(raw(data.data(), data.size()));
    return pad(data.size());
  }
  // `size` bytes of the file open at `fd`, read in blocks.
  Status add_file(const std::string& name, int fd, uint64_t size, const std::string& where) {
    DSQ_TRY(header(name, size));
    std::vector<char> buf(1 << 20);
    for (uint64_t done = 0; done < size;) {
      ssize_t n = pread(fd, buf.data(), std::min<uint64_t>(buf.size(), size - done),
                        static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::error(where + ": read failed: " + std::strerror(errno));
      DSQ_TRY(raw(buf.data(), static_cast<size_t>(n)));
      done += static_cast<uint64_t>(n);
    }
    return pad(size);
  }
  Status header(const std::string& name, uint64_t size) {
    std::string h = encode_header(name, size);
    return raw(h.data(), h.size());
  }
  std::string encode_header(const std::string& name, uint64_t size) const {
    EntryPtr e = make_entry(name, false, size, mtime_, 0644);
    return encode_tar_header(e.get());
  }
  Status raw(const void* data, size_t size) {
    DSQ_TRY(sink_.write(data, size));
    pos_ += size;
    return {};
  }
  Status pad(uint64_t size) {
    static const char zeros[1024] = {};
    return raw(zeros, tar_padding(size));
  }
  Status finish() {
    static const char zeros[1024] = {};
    return raw(zeros, sizeof zeros);
  }
  uint64_t pos() const { return pos_; }
  void advance(uint64_t n) { pos_ += n; }
  Sink& sink() { return sink_; }

 private:
  Sink& sink_;
  int64_t mtime_;
  uint64_t pos_ = 0;
};

// What goes into the archive, and what the destination allows.
struct Layout {
  int rewrite_fd = -1;        // the archive file, for rewriting the new layer's header in place
  size_t omit_below = 0;      // kept layers [0, omit_below) are left out: the daemon has them
  bool commit_point = false;  // a load stream: interrupts are deferred from the metadata on
};

std::string blob_path(const std::string& digest) {
  return "blobs/sha256/" + std::string(digest_hex(digest));
}

std::string descriptor(const char* media_type, const std::string& digest, uint64_t size) {
  return std::string("{\"mediaType\":") + json_quote(media_type) +
         ",\"digest\":" + json_quote(digest) + ",\"size\":" + std::to_string(size) + "}";
}

LayerEncoding encoding(const Context& ctx) {
  LayerEncoding e;
  e.compression = ctx.opts.compression.value_or(
      ctx.containerd_store && ctx.opts.load() ? Compression::kGzip : Compression::kNone);
  e.level = ctx.opts.compression_level ? ctx.opts.compression_level : default_level(e.compression);
  e.workers = static_cast<unsigned>(tbb::this_task_arena::max_concurrency());
  return e;
}

// Writes the new layer (see the top of the file); `path` receives its name in the archive.
Status write_new_layer(Context& ctx, ArchiveWriter& w, const Layout& layout, std::string& path) {
  std::vector<Bytes> tars;
  for (const LayerSource& l : ctx.image.layers) tars.push_back(l.tar);
  const LayerEncoding enc = encoding(ctx);
  const uint64_t size = ctx.plan.layer_size;
  EmittedLayer out;
  if (enc.compression != Compression::kNone) {
    const std::string dir = temp_dir(ctx.opts.tmp_dir);
    int fd = -1;
    DSQ_TRY(create_anonymous_file(dir, fd));
    FdSink spool(fd, dir + " (compressed layer spool)");
    Status st = emit_layer(ctx.plan, tars, enc, spool, out);
    if (st.ok()) st = w.add_file(blob_path(out.digest), fd, out.size, spool.where());
    close(fd);
    DSQ_TRY(st);
    path = blob_path(out.digest);
  } else if (layout.rewrite_fd >= 0) {
    const uint64_t header_at = w.pos();
    DSQ_TRY(w.header("blobs/sha256/" + std::string(64, '0'), size));
    DSQ_TRY(emit_layer(ctx.plan, tars, enc, w.sink(), out));
    w.advance(size);
    DSQ_TRY(w.pad(size));
    path = blob_path(out.digest);
    std::string h = w.encode_header(path, size);
    if (pwrite(layout.rewrite_fd, h.data(), h.size(), static_cast<off_t>(header_at)) !=
        static_cast<ssize_t>(h.size()))
      return Status::error("cannot rewrite the layer header in the archive: " +
                           std::string(std::strerror(errno)));
  } else {
    path = "squashed/layer.tar";
    DSQ_TRY(w.header(path, size));
    DSQ_TRY(emit_layer(ctx.plan, tars, enc, w.sink(), out));
    w.advance(size);
    DSQ_TRY(w.pad(size));
  }
  ctx.result.diff_id = out.diff_id;
  ctx.result.layer_digest = out.digest;
  ctx.result.layer_size = size;
  ctx.result.blob_size = out.size;
  ctx.result.layer_compression = enc.compression;
  return {};
}

Status write_contents(Context& ctx, ArchiveWriter& w, const Layout& layout, const ImageRef* ref) {
  const size_t first = ctx.selection.first_layer;
  const bool new_layer = first < ctx.layer_count();
  std::set<std::string> written;
  std::vector<std::string> paths, layer_digests, diff_ids, media_types;
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < first; ++i) {
    const LayerSource& l = ctx.image.layers[i];
    paths.push_back(blob_path(l.blob_digest));
    if (i >= layout.omit_below && written.insert(l.blob_digest).second)
      DSQ_TRY(w.add_bytes(paths.back(), l.blob));
    layer_digests.push_back(l.blob_digest);
    diff_ids.push_back(l.diff_id);
    sizes.push_back(l.blob.size());
    media_types.push_back(oci_layer_media_type(l.compression));
  }
  // Without digest names (a stream of an uncompressed layer) only the classic layout is written.
  bool oci = true;
  if (new_layer) {
    paths.emplace_back();
    DSQ_TRY(write_new_layer(ctx, w, layout, paths.back()));
    oci = paths.back() == blob_path(ctx.result.layer_digest);
    layer_digests.push_back(ctx.result.layer_digest);
    diff_ids.push_back(ctx.result.diff_id);
    sizes.push_back(ctx.result.blob_size);
    media_types.push_back(oci_layer_media_type(ctx.result.layer_compression));
  }
  // A daemon reading the stream loads the image once it has the metadata, whatever follows.
  if (layout.commit_point) defer_interrupts(true);

  ConfigEdit edit;
  edit.created = rfc3339_now(ctx.opts.source_date_epoch);
  edit.kept_history = ctx.selection.first_history;
  edit.kept_layers = first;
  if (new_layer) edit.new_diff_id = ctx.result.diff_id;
  edit.comment = ctx.opts.message;
  edit.write_history = ctx.image.has_history;
  ctx.result.metadata_offset = w.pos();
  DSQ_TRY(rewrite_config(ctx.image.config, edit, ctx.result.config));
  ctx.result.image_id = sha256_digest(ctx.result.config);
  ctx.result.chain_id = chain_id(diff_ids);
  DSQ_TRY(w.add(blob_path(ctx.result.image_id), ctx.result.config));

  if (oci) {
    std::string manifest =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.oci.image.manifest.v1+json\",\"config\":" +
        descriptor("application/vnd.oci.image.config.v1+json", ctx.result.image_id,
                   ctx.result.config.size()) +
        ",\"layers\":[";
    for (size_t i = 0; i < layer_digests.size(); ++i)
      manifest += (i ? "," : "") + descriptor(media_types[i].c_str(), layer_digests[i], sizes[i]);
    manifest += "]}";
    std::string manifest_digest = sha256_digest(manifest);
    DSQ_TRY(w.add(blob_path(manifest_digest), manifest));

    std::string index =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.oci.image.index.v1+json\",\"manifests\":[" +
        descriptor("application/vnd.oci.image.manifest.v1+json", manifest_digest, manifest.size());
    if (ref) {
      index.pop_back();
      index += ",\"annotations\":{\"io.containerd.image.name\":" + json_quote(ref->full) +
               ",\"org.opencontainers.image.ref.name\":" + json_quote(ref->tag) + "}}";
    }
    index += "]}";
    DSQ_TRY(w.add("index.json", index));
  }

  std::string docker_manifest =
      "[{\"Config\":" + json_quote(blob_path(ctx.result.image_id)) +
      ",\"RepoTags\":" + (ref ? "[" + json_quote(ref->familiar) + "]" : std::string("null")) +
      ",\"Layers\":[";
  for (size_t i = 0; i < paths.size(); ++i)
    docker_manifest += (i ? "," : "") + json_quote(paths[i]);
  docker_manifest += "]}]";
  DSQ_TRY(w.add("manifest.json", docker_manifest));
  if (oci) DSQ_TRY(w.add("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  if (ref) {
    std::string repositories = "{" + json_quote(ref->repo) + ":{" + json_quote(ref->tag) + ":" +
                               json_quote(std::string(digest_hex(ctx.result.image_id))) + "}}";
    DSQ_TRY(w.add("repositories", repositories));
  }
  DSQ_TRY(w.finish());
  ctx.result.archive_bytes = w.pos();
  return {};
}

Status copy_to_stdout(int fd, uint64_t size) {
  off_t offset = 0;
  while (static_cast<uint64_t>(offset) < size) {
    ssize_t n = sendfile(1, fd, &offset, size - static_cast<uint64_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status::error(std::string("-: cannot write the archive to standard output: ") +
                           std::strerror(errno));
  }
  return {};
}

Status parse_tag(const Context& ctx, ImageRef& ref, const ImageRef*& tag) {
  tag = nullptr;
  if (ctx.opts.tag.empty()) return {};
  DSQ_TRY(parse_image_ref(ctx.opts.tag, ref));
  tag = &ref;
  return {};
}

int64_t archive_mtime(const Context& ctx) {
  return ctx.opts.source_date_epoch ? *ctx.opts.source_date_epoch : time(nullptr);
}

}  // namespace

Status stream_to_daemon(Context& ctx, bool omit_known_layers) {
  ImageRef ref;
  const ImageRef* tag = nullptr;
  DSQ_TRY(parse_tag(ctx, ref, tag));
  Layout layout;
  layout.commit_point = true;
  // Only a classic store is known to skip the files of layers it has (it looks each chain up
  // before opening the file); the source's kept layers are there, since it was just saved.
  if (omit_known_layers && ctx.opts.daemon_image() && !ctx.containerd_store)
    layout.omit_below = ctx.selection.first_layer;
  ctx.omitted_layers = layout.omit_below;
  Sink* body = nullptr;
  DSQ_TRY(ctx.docker.begin_load(body));
  ArchiveWriter w(*body, archive_mtime(ctx));
  ctx.streamed = true;
  Status st = write_contents(ctx, w, layout, tag);
  return st.ok() ? st : ctx.docker.abandon_load(st);
}

Status write_image(Context& ctx) {
  ImageRef ref;
  const ImageRef* tag = nullptr;
  DSQ_TRY(parse_tag(ctx, ref, tag));
  const int64_t mtime = archive_mtime(ctx);
  const std::string& out = ctx.opts.output_path;
  const bool load = ctx.opts.load();
  if (load && !ctx.opts.daemon_image()) DSQ_TRY(connect_daemon(ctx));
  if (out.empty()) return stream_to_daemon(ctx, true);
  if (out == "-") {
    // Standard output: an archive built in an unlinked file in the temp directory, then copied.
    int fd = -1;
    std::string spool = temp_dir(ctx.opts.tmp_dir);
    DSQ_TRY(create_anonymous_file(spool, fd));
    FdSink sink(fd, spool + " (archive spool)");
    ArchiveWriter w(sink, mtime);
    Layout layout;
    layout.rewrite_fd = fd;
    Status st = write_contents(ctx, w, layout, tag);
    if (st.ok()) st = copy_to_stdout(fd, w.pos());
    if (st.ok() && load) {
      ctx.archive_fd = fd;
      return {};
    }
    close(fd);
    return st;
  }
  size_t slash = out.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : out.substr(0, slash));
  std::string base = slash == std::string::npos ? out : out.substr(slash + 1);
  std::string temp;
  int fd = -1;
  DSQ_TRY(create_temp_file(dir, base, temp, fd));
  FdSink sink(fd, out);
  ArchiveWriter w(sink, mtime);
  Layout layout;
  layout.rewrite_fd = fd;
  Status st = write_contents(ctx, w, layout, tag);
  if (st.ok() && load) {
    ctx.archive_fd = dup(fd);
    if (ctx.archive_fd < 0) st = Status::error(out + ": " + std::strerror(errno));
  }
  if (close(fd) != 0 && st.ok()) st = Status::error(out + ": " + std::strerror(errno));
  if (!st.ok()) {
    discard_temp_file(temp);
    return st;
  }
  return commit_temp_file(temp, out);
}

}  // namespace dsq
