// The daemon's side of a squash: `docker save` of the source into one spool file (the only
// copy on disk; unlinked from the start, so nothing is left behind on any exit), and
// `docker load` of the finished archive, then the optional removal of the source image.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/image-ref.h"
#include "engine/passes.h"
#include "io/json.h"
#include "io/sha256.h"
#include "io/temp-files.h"

namespace dsq {

namespace {

Status read_source(Context& ctx) {
  const std::string& name = ctx.opts.image;
  std::string body;
  DSQ_TRY(ctx.docker.get("/images/" + name + "/json", body));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view id;
  if (parser.parse(body).get(doc) || doc["Id"].get(id))
    return Status::error("docker daemon: unreadable answer to GET /images/" + name + "/json");
  ctx.source.id = id;
  uint64_t size = 0;
  if (!doc["Size"].get(size)) ctx.source.size = size;
  DSQ_TRY(ctx.docker.get("/images/" + name + "/history", body));
  simdjson::dom::array history;
  if (parser.parse(body).get(history))
    return Status::error("docker daemon: unreadable answer to GET /images/" + name + "/history");
  for (auto entry : history) {
    std::string_view hid;
    ctx.source.history_ids.emplace(ctx.source.history_ids.begin(),
                                   entry["Id"].get(hid) ? "<missing>" : std::string(hid));
  }
  return {};
}

}  // namespace

// The spool holds the whole save stream (about the image's size); an archive for standard
// output or a compressed new layer (each at most as large again) are spooled beside it. Fail
// before saving anything if the temp filesystem cannot take that.
Status check_space(const Context& ctx) {
  const std::string dir = temp_dir(ctx.opts.tmp_dir);
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return Status::error(dir + ": " + errno_text(errno));
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const bool second = ctx.opts.output_path == "-" || ctx.containerd_store ||
                      ctx.opts.compression.value_or(Compression::kNone) != Compression::kNone;
  const uint64_t needed = ctx.source.size * (second ? 2 : 1);
  if (needed > free_bytes)
    return Status::error(dir + ": needs about " + std::to_string(needed >> 20) +
                         " MiB for the image spool" + (second ? " and the squashed layer" : "") +
                         ", only " + std::to_string(free_bytes >> 20) +
                         " MiB free (choose another --tmp-dir)");
  return {};
}

Status connect_daemon(Context& ctx) {
  DSQ_TRY(ctx.docker.connect_from_environment());
  std::string body;
  DSQ_TRY(ctx.docker.get("/version", body));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view version;
  if (!parser.parse(body).get(doc) && !doc["Version"].get(version)) ctx.daemon_version = version;
  return ctx.docker.uses_containerd_store(ctx.containerd_store);
}

Status save_from_daemon(Context& ctx) {
  DSQ_TRY(connect_daemon(ctx));
  DSQ_TRY(read_source(ctx));
  DSQ_TRY(check_space(ctx));
  int fd = -1;
  const std::string dir = temp_dir(ctx.opts.tmp_dir);
  DSQ_TRY(create_anonymous_file(dir, fd));
  uint64_t bytes = 0;
  Status st = ctx.docker.save(ctx.opts.image, fd, dir + " (save spool)", bytes);
  if (!st.ok()) {
    close(fd);
    return st;
  }
  return ctx.input.open_fd(fd, ctx.opts.image);
}

// Removes the source image for -c, unless the tag is the source itself.
Status remove_source(Context& ctx) {
  ImageRef tag;
  DSQ_TRY(parse_image_ref(ctx.opts.tag, tag));
  ImageRef source;
  if (parse_image_ref(ctx.opts.image, source).ok() && source.full == tag.full)
    return {};  // "Tag is the same as image; preventing cleanup" (reported by the CLI)
  return ctx.docker.remove(ctx.opts.image);
}

// A classic store that lacks a layer left out of the stream fails to open its file.
bool lacked_omitted_layer(const Context& ctx, const Status& st) {
  if (st.message().find("no such file or directory") == std::string::npos) return false;
  for (size_t i = 0; i < ctx.omitted_layers; ++i)
    if (st.message().find(digest_hex(ctx.image.layers[i].blob_digest)) != std::string::npos)
      return true;
  return false;
}

// Loaders apply the archive's name (RepoTags, or the OCI ref annotation); one that reports only
// "Loaded image ID: <id>" has not, so the tag is set by hand and -t always lands on the image.
Status ensure_tagged(Context& ctx, const std::string& loaded) {
  const std::string by_id = "Loaded image ID: ";
  if (!loaded.starts_with(by_id)) return {};
  ImageRef ref;
  DSQ_TRY(parse_image_ref(ctx.opts.tag, ref));
  return ctx.docker.tag(loaded.substr(by_id.size()), ref.repo, ref.tag);
}

Status load_into_daemon(Context& ctx) {
  std::string loaded;
  Status st;
  if (ctx.streamed) {
    st = ctx.docker.finish_load(loaded);
    if (!st.ok() && lacked_omitted_layer(ctx, st)) {
      // An image holding the kept layers was removed after the save: send them after all.
      defer_interrupts(false);
      if (int sig = take_pending_interrupt()) return Status::error("interrupted", 128 + sig);
      st = stream_to_daemon(ctx, false);
      if (st.ok()) st = ctx.docker.finish_load(loaded);
    }
  } else {
    if (ctx.archive_fd < 0) return Status::error("internal: no archive to load");
    st = ctx.docker.load(ctx.archive_fd, ctx.result.archive_bytes, ctx.result.metadata_offset,
                         loaded);
    close(ctx.archive_fd);
    ctx.archive_fd = -1;
  }
  // From the moment the daemon had the image metadata, interrupts are only recorded (the load
  // completes or fails on its own, and the cleanup that follows is not cut in half).
  // They stay deferred after a successful load: the run is committed and only reports remain;
  // the CLI notes an interrupt that arrives later.
  if (st.ok() && !ctx.opts.tag.empty()) st = ensure_tagged(ctx, loaded);
  int sig = take_pending_interrupt();
  if (st.ok() && ctx.opts.cleanup && sig == 0) st = remove_source(ctx);
  if (!st.ok()) defer_interrupts(false);
  if (sig == 0) sig = take_pending_interrupt();
  if (sig != 0) {
    if (!st.ok()) return Status::error(st.message() + " (interrupted)", 128 + sig);
    ctx.warnings.push_back(
        "interrupted after the daemon had the whole archive: the image is loaded" +
        std::string(ctx.opts.cleanup ? ", --cleanup skipped" : ""));
  }
  return st;
}

}  // namespace dsq
