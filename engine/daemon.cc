// The daemon's side of a squash: `docker save` of the source into one spool file (the only
// copy on disk; unlinked from the start, so nothing is left behind on any exit), and
// `docker load` of the finished archive, then the optional removal of the source image.
#include <unistd.h>

#include "engine/image-ref.h"
#include "engine/passes.h"
#include "io/json.h"
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

Status save_from_daemon(Context& ctx) {
  DSQ_TRY(ctx.docker.connect_from_environment());
  DSQ_TRY(read_source(ctx));
  int fd = -1;
  DSQ_TRY(create_anonymous_file(temp_dir(ctx.opts.tmp_dir), fd));
  uint64_t bytes = 0;
  Status st = ctx.docker.save(ctx.opts.image, fd, bytes);
  if (!st.ok()) {
    close(fd);
    return st;
  }
  return ctx.input.open_fd(fd, ctx.opts.image);
}

Status load_into_daemon(Context& ctx) {
  if (ctx.archive_fd < 0) return Status::error("internal: no archive to load");
  if (!ctx.opts.daemon_image()) DSQ_TRY(ctx.docker.connect_from_environment());
  std::string loaded;
  Status st = ctx.docker.load(ctx.archive_fd, ctx.result.archive_bytes, loaded);
  close(ctx.archive_fd);
  ctx.archive_fd = -1;
  DSQ_TRY(st);
  if (!ctx.opts.cleanup) return {};
  ImageRef tag;
  DSQ_TRY(parse_image_ref(ctx.opts.tag, tag));
  ImageRef source;
  if (parse_image_ref(ctx.opts.image, source).ok() && source.full == tag.full)
    return {};  // "Tag is the same as image; preventing cleanup" (reported by the CLI)
  return ctx.docker.remove(ctx.opts.image);
}

}  // namespace dsq
