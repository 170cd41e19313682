// The output: a docker-archive holds both layouts Docker 25+ writes, manifest.json (+
// repositories when tagged) for the classic store and oci-layout + index.json + blobs/sha256/*
// for the containerd store, every blob stored once; an oci-archive (a tar) or an oci directory
// holds the OCI layout alone. The new layer's digest is known only after its bytes:
// - into an archive file, the uncompressed layer is streamed behind a placeholder header that is
//   rewritten in place once the digest is known (same name length, same size: same 512 bytes);
// - a compressed layer (its size unknown in advance) is compressed into an anonymous spool first;
// - into a directory, the layer goes to a temporary name and is renamed to its digest;
// - a load stream to the daemon (no file to rewrite) names the uncompressed layer
//   squashed/layer.tar and carries only manifest.json, which is all a classic store reads, and
//   leaves out the kept layers the daemon already has.
// Files and directories are built under temporary names and renamed into place; standard output
// gets an archive built in an anonymous temp file.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <tbb/global_control.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
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

std::string blob_path(const std::string& digest) {
  return "blobs/sha256/" + std::string(digest_hex(digest));
}

// Writes the new layer into a sink.
using EmitFn = std::function<Status(Sink&, EmittedLayer&)>;

// Where the image's files go: entries of a tar, or files of a directory.
class Output {
 public:
  virtual ~Output() = default;
  virtual Status add_bytes(const std::string& name, Bytes data) = 0;
  // The new layer, written by `emit` (exactly `size` bytes unless `compressed`); `path`
  // receives the name it is stored under.
  virtual Status add_layer(bool compressed, uint64_t size, const EmitFn& emit, EmittedLayer& layer,
                           std::string& path) = 0;
  virtual Status finish() { return {}; }
  virtual uint64_t bytes() const = 0;

  Status add(const std::string& name, std::string_view data) {
    return add_bytes(name, {reinterpret_cast<const std::byte*>(data.data()), data.size()});
  }
};

class TarOutput final : public Output {
 public:
  // `rewrite_fd`: the archive file, when the layer's header may be rewritten in place (-1 for a
  // stream). `spool_dir`: where a compressed layer is spooled.
  TarOutput(Sink& sink, int64_t mtime, int rewrite_fd, std::string spool_dir)
      : sink_(sink), mtime_(mtime), rewrite_fd_(rewrite_fd), spool_dir_(std::move(spool_dir)) {}

  Status add_bytes(const std::string& name, Bytes data) override {
    DSQ_TRY(header(name, data.size()));
    DSQ_TRY(raw(data.data(), data.size()));
    return pad(data.size());
  }

  Status add_layer(bool compressed, uint64_t size, const EmitFn& emit, EmittedLayer& layer,
                   std::string& path) override {
    if (compressed) {
      int fd = -1;
      DSQ_TRY(create_anonymous_file(spool_dir_, fd));
      FdSink spool(fd, spool_dir_ + " (compressed layer spool)");
      Status st = emit(spool, layer);
      path = blob_path(layer.digest);
      if (st.ok()) st = add_file(path, fd, layer.size, spool.where());
      close(fd);
      return st;
    }
    const uint64_t header_at = pos_;
    const bool rewrite = rewrite_fd_ >= 0;
    DSQ_TRY(header(rewrite ? "blobs/sha256/" + std::string(64, '0') : "squashed/layer.tar", size));
    DSQ_TRY(emit(sink_, layer));
    pos_ += size;
    DSQ_TRY(pad(size));
    if (!rewrite) {
      path = "squashed/layer.tar";
      return {};
    }
    path = blob_path(layer.digest);
    std::string h = encode_header(path, size);
    if (pwrite(rewrite_fd_, h.data(), h.size(), static_cast<off_t>(header_at)) !=
        static_cast<ssize_t>(h.size()))
      return Status::error("cannot rewrite the layer header in the archive: " + errno_text(errno));
    return {};
  }

  Status finish() override {
    static const char zeros[1024] = {};
    return raw(zeros, sizeof zeros);
  }
  uint64_t bytes() const override { return pos_; }

 private:
  // `size` bytes of the file open at `fd`, read in blocks.
  Status add_file(const std::string& name, int fd, uint64_t size, const std::string& where) {
    DSQ_TRY(header(name, size));
    std::vector<char> buf(1 << 20);
    for (uint64_t done = 0; done < size;) {
      ssize_t n = pread(fd, buf.data(), std::min<uint64_t>(buf.size(), size - done),
                        static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::error(where + ": read failed: " + errno_text(errno));
      DSQ_TRY(raw(buf.data(), static_cast<size_t>(n)));
      done += static_cast<uint64_t>(n);
    }
    return pad(size);
  }
  std::string encode_header(const std::string& name, uint64_t size) const {
    EntryPtr e = make_entry(name, false, size, mtime_, 0644);
    return encode_tar_header(e.get());
  }
  Status header(const std::string& name, uint64_t size) {
    std::string h = encode_header(name, size);
    return raw(h.data(), h.size());
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

  Sink& sink_;
  int64_t mtime_;
  int rewrite_fd_;
  std::string spool_dir_;
  uint64_t pos_ = 0;
};

// An OCI layout directory, built inside a registered temporary directory.
class DirOutput final : public Output {
 public:
  explicit DirOutput(std::string root) : root_(std::move(root)) {}

  Status add_bytes(const std::string& name, Bytes data) override {
    int fd = -1;
    DSQ_TRY(create(name, fd));
    Status st = write_all(fd, data.data(), data.size(), root_ + "/" + name);
    if (close(fd) != 0 && st.ok()) st = Status::error(root_ + "/" + name + ": close failed");
    bytes_ += data.size();
    return st;
  }

  Status add_layer(bool, uint64_t, const EmitFn& emit, EmittedLayer& layer,
                   std::string& path) override {
    int fd = -1;
    const std::string temp = "blobs/sha256/.new-layer";
    DSQ_TRY(create(temp, fd));
    FdSink sink(fd, root_ + "/" + temp);
    Status st = emit(sink, layer);
    if (close(fd) != 0 && st.ok()) st = Status::error(sink.where() + ": close failed");
    DSQ_TRY(st);
    path = blob_path(layer.digest);
    const std::string from = root_ + "/" + temp, to = root_ + "/" + path;
    if (rename(from.c_str(), to.c_str()) != 0)
      return Status::error(to + ": cannot rename: " + errno_text(errno));
    rename_temp(from, to);
    bytes_ += layer.size;
    return {};
  }
  uint64_t bytes() const override { return bytes_; }

 private:
  // Creates root/name and its missing parents, each registered for removal.
  Status create(const std::string& name, int& fd) {
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      std::string dir = root_ + "/" + name.substr(0, slash);
      if (made_.insert(dir).second) {
        int unused = -1;
        DSQ_TRY(create_in_temp_dir(dir, true, unused));
      }
    }
    return create_in_temp_dir(root_ + "/" + name, false, fd);
  }

  std::string root_;
  std::set<std::string> made_;
  uint64_t bytes_ = 0;
};

// What goes into the output.
struct Contents {
  bool docker = true;  // manifest.json (+ repositories)
  bool oci = true;     // oci-layout, index.json, the OCI manifest (if the layer has a digest name)
  size_t omit_below = 0;      // kept layers [0, omit_below) are left out: the daemon has them
  bool commit_point = false;  // a load stream: interrupts are deferred from the metadata on
};

std::string descriptor(const char* media_type, const std::string& digest, uint64_t size) {
  return std::string("{\"mediaType\":") + json_quote(media_type) +
         ",\"digest\":" + json_quote(digest) + ",\"size\":" + std::to_string(size) + "}";
}

LayerEncoding encoding(const Context& ctx) {
  LayerEncoding e;
  e.compression = ctx.opts.compression.value_or(
      ctx.containerd_store && ctx.opts.load() ? Compression::kGzip : Compression::kNone);
  e.level = ctx.opts.compression_level ? ctx.opts.compression_level : default_level(e.compression);
  e.workers = static_cast<unsigned>(
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  return e;
}

// Writes the new layer; `path` receives its name in the output.
Status write_new_layer(Context& ctx, Output& out, std::string& path) {
  std::vector<Bytes> tars;
  for (const LayerSource& l : ctx.image.layers) tars.push_back(l.tar);
  const LayerEncoding enc = encoding(ctx);
  EmittedLayer layer;
  DSQ_TRY(out.add_layer(
      enc.compression != Compression::kNone, ctx.plan.layer_size,
      [&](Sink& sink, EmittedLayer& l) { return emit_layer(ctx.plan, tars, enc, sink, l); }, layer,
      path));
  ctx.result.diff_id = layer.diff_id;
  ctx.result.layer_digest = layer.digest;
  ctx.result.layer_size = ctx.plan.layer_size;
  ctx.result.blob_size = layer.size;
  ctx.result.layer_compression = enc.compression;
  return {};
}

Status write_contents(Context& ctx, Output& w, const Contents& contents, const ImageRef* ref) {
  const size_t first = ctx.selection.first_layer;
  const bool new_layer = first < ctx.layer_count();
  std::set<std::string> written;
  std::vector<std::string> paths, layer_digests, diff_ids, media_types;
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < first; ++i) {
    const LayerSource& l = ctx.image.layers[i];
    paths.push_back(blob_path(l.blob_digest));
    if (i >= contents.omit_below && written.insert(l.blob_digest).second)
      DSQ_TRY(w.add_bytes(paths.back(), l.blob));
    layer_digests.push_back(l.blob_digest);
    diff_ids.push_back(l.diff_id);
    sizes.push_back(l.blob.size());
    media_types.push_back(oci_layer_media_type(l.compression));
  }
  bool oci = contents.oci;
  if (new_layer) {
    paths.emplace_back();
    DSQ_TRY(write_new_layer(ctx, w, paths.back()));
    // Without a digest name (an uncompressed layer in a stream) only manifest.json can name it.
    oci = oci && paths.back() == blob_path(ctx.result.layer_digest);
    layer_digests.push_back(ctx.result.layer_digest);
    diff_ids.push_back(ctx.result.diff_id);
    sizes.push_back(ctx.result.blob_size);
    media_types.push_back(oci_layer_media_type(ctx.result.layer_compression));
  }
  // A daemon reading the stream loads the image once it has the metadata, whatever follows.
  if (contents.commit_point) defer_interrupts(true);

  ConfigEdit edit;
  edit.created = rfc3339_now(ctx.opts.source_date_epoch);
  edit.kept_history = ctx.selection.first_history;
  edit.kept_layers = first;
  if (new_layer) edit.new_diff_id = ctx.result.diff_id;
  edit.comment = ctx.opts.message;
  edit.write_history = ctx.image.has_history;
  ctx.result.metadata_offset = w.bytes();
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
  if (contents.docker) DSQ_TRY(w.add("manifest.json", docker_manifest));
  if (oci) DSQ_TRY(w.add("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  if (ref && contents.docker) {
    std::string repositories = "{" + json_quote(ref->repo) + ":{" + json_quote(ref->tag) + ":" +
                               json_quote(std::string(digest_hex(ctx.result.image_id))) + "}}";
    DSQ_TRY(w.add("repositories", repositories));
  }
  DSQ_TRY(w.finish());
  ctx.result.archive_bytes = w.bytes();
  return {};
}

Status copy_to_stdout(int fd, uint64_t size) {
  off_t offset = 0;
  while (static_cast<uint64_t>(offset) < size) {
    ssize_t n = sendfile(1, fd, &offset, size - static_cast<uint64_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status::error(std::string("-: cannot write the archive to standard output: ") +
                           errno_text(errno));
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
  Contents contents;
  contents.commit_point = true;
  // Only a classic store is known to skip the files of layers it has (it looks each chain up
  // before opening the file); the source's kept layers are there, since it was just saved.
  if (omit_known_layers && ctx.opts.daemon_image() && !ctx.containerd_store)
    contents.omit_below = ctx.selection.first_layer;
  ctx.omitted_layers = contents.omit_below;
  Sink* body = nullptr;
  DSQ_TRY(ctx.docker.begin_load(body));
  TarOutput w(*body, archive_mtime(ctx), -1, temp_dir(ctx.opts.tmp_dir));
  ctx.streamed = true;
  Status st = write_contents(ctx, w, contents, tag);
  return st.ok() ? st : ctx.docker.abandon_load(st);
}

namespace {

// An OCI layout directory at `out`, built beside it and renamed into place.
Status write_directory(Context& ctx, const std::string& out, const ImageRef* tag) {
  // rename(2) replaces an empty directory, nothing else.
  std::error_code ec;
  if (std::filesystem::exists(out, ec) &&
      !(std::filesystem::is_directory(out, ec) && std::filesystem::is_empty(out, ec)))
    return Status::error(out + ": already exists (an oci output must be a new or empty directory)");
  size_t slash = out.find_last_of('/', out.size() > 1 ? out.size() - 2 : 0);
  std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : out.substr(0, slash));
  std::string temp;
  DSQ_TRY(create_temp_dir(parent, "oci-layout", temp));
  DirOutput w(temp);
  Contents contents;
  contents.docker = false;
  Status result = write_contents(ctx, w, contents, tag);
  // mkdtemp made it 0700; a layout directory is as readable as any directory the user makes.
  const mode_t mask = umask(0);
  umask(mask);
  if (result.ok() && chmod(temp.c_str(), 0777 & ~mask) != 0)
    result = Status::error(temp + ": " + errno_text(errno));
  if (result.ok() && rename(temp.c_str(), out.c_str()) != 0)
    result = Status::error(out + ": cannot rename the layout into place: " + errno_text(errno));
  if (!result.ok()) {
    discard_temps_under(temp);
    return result;
  }
  forget_temps_under(temp);
  return {};
}

// An archive file at `out` (a temporary name, renamed into place), or standard output for "-".
Status write_archive(Context& ctx, const std::string& out, const Contents& contents,
                     const ImageRef* tag, bool keep_for_load) {
  const int64_t mtime = archive_mtime(ctx);
  const std::string spool_dir = temp_dir(ctx.opts.tmp_dir);
  if (out == "-") {
    // Built in an unlinked file in the temp directory, then copied out.
    int fd = -1;
    DSQ_TRY(create_anonymous_file(spool_dir, fd));
    FdSink sink(fd, spool_dir + " (archive spool)");
    TarOutput w(sink, mtime, fd, spool_dir);
    Status st = write_contents(ctx, w, contents, tag);
    if (st.ok()) st = copy_to_stdout(fd, w.bytes());
    if (st.ok() && keep_for_load) {
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
  TarOutput w(sink, mtime, fd, spool_dir);
  Status st = write_contents(ctx, w, contents, tag);
  if (st.ok() && keep_for_load) {
    ctx.archive_fd = dup(fd);
    if (ctx.archive_fd < 0) st = Status::error(out + ": " + errno_text(errno));
  }
  if (close(fd) != 0 && st.ok()) st = Status::error(out + ": " + errno_text(errno));
  if (!st.ok()) {
    if (ctx.archive_fd >= 0) close(ctx.archive_fd), ctx.archive_fd = -1;
    discard_temp_file(temp);
    return st;
  }
  return commit_temp_file(temp, out);
}

}  // namespace

Status write_image(Context& ctx) {
  ImageRef ref;
  const ImageRef* tag = nullptr;
  DSQ_TRY(parse_tag(ctx, ref, tag));
  const std::string& out = ctx.opts.output_path;
  const std::string& format = ctx.opts.output_format;
  const bool load = ctx.opts.load();
  if (load && !ctx.opts.daemon_image()) DSQ_TRY(connect_daemon(ctx));
  if (out.empty()) return stream_to_daemon(ctx, true);
  if (format == "oci") {
    DSQ_TRY(write_directory(ctx, out, tag));
  } else {
    Contents contents;
    contents.docker = format == "docker-archive";
    DSQ_TRY(write_archive(ctx, out, contents, tag, load && contents.docker));
  }
  // An OCI output is not what the daemon loads: the load gets its own stream.
  if (load && format != "docker-archive") return stream_to_daemon(ctx, true);
  return {};
}

}  // namespace dsq
