// The output archive holds both layouts Docker 25+ writes: manifest.json (+ repositories when
// tagged) for the classic store and oci-layout + index.json + blobs/sha256/* for the containerd
// store, with every blob stored once. The new layer is streamed straight into the archive behind
// a placeholder header; once its digest is known the header is rewritten in place (same name
// length, same size, so the same 512 bytes). The archive is written to a temporary name and
// renamed, or, for standard output, built in an anonymous temp file and then copied out.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "engine/config-rewrite.h"
#include "engine/emit-layer.h"
#include "engine/image-ref.h"
#include "engine/passes.h"
#include "io/json.h"
#include "io/sha256.h"
#include "io/tar-header.h"
#include "io/temp-files.h"

namespace dsq {

namespace {

class ArchiveWriter {
 public:
  ArchiveWriter(int fd, std::string where, int64_t mtime)
      : fd_(fd), where_(std::move(where)), mtime_(mtime) {}

  Status add(const std::string& name, std::string_view data) {
    return add_bytes(name, {reinterpret_cast<const std::byte*>(data.data()), data.size()});
  }
  Status add_bytes(const std::string& name, Bytes data) {
    DSQ_TRY(header(name, data.size()));
    DSQ_TRY(raw(data.data(), data.size()));
    return pad(data.size());
  }
  Status header(const std::string& name, uint64_t size) {
    EntryPtr e = make_entry(name, false, size, mtime_, 0644);
    std::string h = encode_tar_header(e.get());
    return raw(h.data(), h.size());
  }
  Status raw(const void* data, size_t size) {
    DSQ_TRY(write_all(fd_, data, size, where_));
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
  int fd() const { return fd_; }
  const std::string& where() const { return where_; }
  int64_t mtime() const { return mtime_; }

 private:
  int fd_;
  std::string where_;
  int64_t mtime_;
  uint64_t pos_ = 0;
};

std::string blob_path(const std::string& digest) {
  return "blobs/sha256/" + std::string(digest_hex(digest));
}

std::string descriptor(const char* media_type, const std::string& digest, uint64_t size) {
  return std::string("{\"mediaType\":") + json_quote(media_type) +
         ",\"digest\":" + json_quote(digest) + ",\"size\":" + std::to_string(size) + "}";
}

// Streams the planned layer behind a placeholder header, then writes the real header in place.
Status write_new_layer(Context& ctx, ArchiveWriter& w) {
  std::vector<Bytes> tars;
  for (const LayerSource& l : ctx.image.layers) tars.push_back(l.tar);
  uint64_t header_at = w.pos();
  const std::string placeholder = "blobs/sha256/" + std::string(64, '0');
  DSQ_TRY(w.header(placeholder, ctx.plan.layer_size));
  std::string digest;
  DSQ_TRY(emit_layer(ctx.plan, tars, w.fd(), w.where(), digest));
  w.advance(ctx.plan.layer_size);
  DSQ_TRY(w.pad(ctx.plan.layer_size));
  EntryPtr e = make_entry(blob_path(digest), false, ctx.plan.layer_size, w.mtime(), 0644);
  std::string h = encode_tar_header(e.get());
  if (pwrite(w.fd(), h.data(), h.size(), static_cast<off_t>(header_at)) !=
      static_cast<ssize_t>(h.size()))
    return Status::error(w.where() + ": cannot rewrite layer header: " + std::strerror(errno));
  ctx.result.diff_id = digest;
  ctx.result.layer_size = ctx.plan.layer_size;
  return {};
}

Status write_contents(Context& ctx, ArchiveWriter& w, const ImageRef* ref) {
  const size_t first = ctx.selection.first_layer;
  const bool new_layer = first < ctx.layer_count();
  std::set<std::string> written;
  std::vector<std::string> layer_digests, diff_ids, media_types;
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < first; ++i) {
    const LayerSource& l = ctx.image.layers[i];
    if (written.insert(l.blob_digest).second)
      DSQ_TRY(w.add_bytes(blob_path(l.blob_digest), l.blob));
    layer_digests.push_back(l.blob_digest);
    diff_ids.push_back(l.diff_id);
    sizes.push_back(l.blob.size());
    media_types.push_back(oci_layer_media_type(l.compression));
  }
  if (new_layer) {
    DSQ_TRY(write_new_layer(ctx, w));
    layer_digests.push_back(ctx.result.diff_id);
    diff_ids.push_back(ctx.result.diff_id);
    sizes.push_back(ctx.result.layer_size);
    media_types.push_back(oci_layer_media_type(Compression::kNone));
  }

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

  std::string docker_manifest =
      "[{\"Config\":" + json_quote(blob_path(ctx.result.image_id)) +
      ",\"RepoTags\":" + (ref ? "[" + json_quote(ref->familiar) + "]" : std::string("null")) +
      ",\"Layers\":[";
  for (size_t i = 0; i < layer_digests.size(); ++i)
    docker_manifest += (i ? "," : "") + json_quote(blob_path(layer_digests[i]));
  docker_manifest += "]}]";
  DSQ_TRY(w.add("manifest.json", docker_manifest));
  DSQ_TRY(w.add("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
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

}  // namespace

Status write_image(Context& ctx) {
  ImageRef ref;
  if (!ctx.opts.tag.empty()) DSQ_TRY(parse_image_ref(ctx.opts.tag, ref));
  const ImageRef* tag = ctx.opts.tag.empty() ? nullptr : &ref;
  int64_t mtime = ctx.opts.source_date_epoch ? *ctx.opts.source_date_epoch : time(nullptr);
  const std::string& out = ctx.opts.output_path;
  const bool load = ctx.opts.load();
  if (out.empty() || out == "-") {
    // Standard output or a load without --output-path: an unlinked file in the temp directory.
    int fd = -1;
    std::string spool = temp_dir(ctx.opts.tmp_dir);
    DSQ_TRY(create_anonymous_file(spool, fd));
    ArchiveWriter w(fd, spool + " (archive spool)", mtime);
    Status st = write_contents(ctx, w, tag);
    if (st.ok() && out == "-") st = copy_to_stdout(fd, w.pos());
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
  ArchiveWriter w(fd, out, mtime);
  Status st = write_contents(ctx, w, tag);
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
