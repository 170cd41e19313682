// Opening an image: map the archive (or spool a stdin stream once and map that), list the outer
// tar's entries, then read manifest.json, the config and the layer blobs as slices of the
// mapping. Paths come from manifest.json, never from a naming convention, and symlink entries
// (how `docker save` shares a layer between images) are followed.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "engine/passes.h"
#include "io/json.h"
#include "io/sha256.h"
#include "io/tar-header.h"
#include "io/tar-reader.h"
#include "io/temp-files.h"

namespace dsq {

namespace {

struct OuterEntry {
  TarType type;
  uint64_t data = 0;
  uint64_t size = 0;
  std::string link;
};

using OuterIndex = std::unordered_map<std::string, OuterEntry>;

std::string clean_path(std::string_view raw) {
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    if (c == "..") {
      size_t cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
    } else if (!c.empty() && c != ".") {
      if (!out.empty()) out += '/';
      out += c;
    }
    i = j + 1;
  }
  return out;
}

Status spool_stdin(const std::string& dir, MappedFile& out) {
  struct stat st {};
  if (fstat(0, &st) == 0 && S_ISREG(st.st_mode)) return out.open_fd(dup(0), "-");
  int fd = -1;
  DSQ_TRY(create_anonymous_file(dir, fd));
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read(0, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return Status::error(std::string("-: cannot read standard input: ") + std::strerror(errno));
    }
    Status st2 = write_all(fd, buf.data(), static_cast<size_t>(n), dir + " (stdin spool)");
    if (!st2.ok()) {
      close(fd);
      return st2;
    }
  }
  return out.open_fd(fd, "-");
}

Status list_outer(const MappedFile& input, OuterIndex& out) {
  TarReader reader(input.bytes(), input.name());
  std::vector<std::pair<std::string, TarEntry>> entries;
  for (;;) {
    TarEntry e;
    bool done = false;
    DSQ_TRY(reader.next(e, done));
    if (done) break;
    if (!entries.empty()) entries.back().second.end = e.offset;
    entries.emplace_back(clean_path(e.path), e);
    entries.back().second.path = {};
    entries.back().second.link = {};
    if (e.type == TarType::kSymlink || e.type == TarType::kHardlink) {
      std::string target(e.link);
      if (e.type == TarType::kSymlink) {
        std::string dir = entries.back().first;
        size_t slash = dir.rfind('/');
        dir = slash == std::string::npos ? "" : dir.substr(0, slash + 1);
        target = target.starts_with("/") ? target : dir + target;
      }
      out[entries.back().first].link = clean_path(target);
    }
  }
  if (!entries.empty()) entries.back().second.end = reader.end_offset();
  for (auto& [path, e] : entries) {
    OuterEntry& o = out[path];
    o.type = e.type;
    o.size = e.size;
    o.data = e.end - tar_padded(e.size);
  }
  return {};
}

Status find_file(const MappedFile& input, const OuterIndex& outer, const std::string& path,
                 Bytes& out) {
  std::string p = clean_path(path);
  for (int hops = 0; hops < 16; ++hops) {
    auto it = outer.find(p);
    if (it == outer.end())
      return Status::error(input.name() + ":" + path +
                           ": named by manifest.json but missing from the archive");
    const OuterEntry& e = it->second;
    if (e.type == TarType::kSymlink || e.type == TarType::kHardlink) {
      p = e.link;
      continue;
    }
    if (e.type != TarType::kFile)
      return Status::error(input.name() + ":" + path + ": not a regular file");
    out = input.bytes().subspan(e.data, e.size);
    return {};
  }
  return Status::error(input.name() + ":" + path + ": too many levels of links");
}

using simdjson::ondemand::array;
using simdjson::ondemand::object;

Status read_manifest(Context& ctx, const OuterIndex& outer, std::string& config_path,
                     std::vector<std::string>& layer_paths) {
  std::string where = ctx.input_name + ":manifest.json";
  if (!outer.count("manifest.json"))
    return Status::error(where + ": missing (not a docker save archive?)");
  Bytes bytes;
  DSQ_TRY(find_file(ctx.input, outer, "manifest.json", bytes));
  simdjson::padded_string json(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (auto err = parser.iterate(json).get(doc)) return json_error(where, err);
  array images;
  if (auto err = doc.get_array().get(images)) return json_error(where, err);
  size_t count = 0;
  for (auto item : images) {
    if (++count > 1)
      return Status::error(where +
                           ": the archive holds several images; save one image per archive");
    object image;
    if (auto err = item.get_object().get(image)) return json_error(where, err);
    for (auto field : image) {
      std::string_view key;
      if (auto err = field.unescaped_key().get(key)) return json_error(where, err);
      if (key == "Config") {
        std::string_view v;
        if (auto err = field.value().get_string().get(v))
          return json_error(where + ": Config", err);
        config_path = v;
      } else if (key == "Layers" || key == "RepoTags") {
        simdjson::ondemand::value value = field.value();
        bool is_null = false;
        if (auto err = value.is_null().get(is_null))
          return json_error(where + ": " + std::string(key), err);
        if (is_null) continue;
        array list;
        if (auto err = value.get_array().get(list))
          return json_error(where + ": " + std::string(key), err);
        for (auto v : list) {
          std::string_view s;
          if (auto err = v.get_string().get(s))
            return json_error(where + ": " + std::string(key), err);
          (key == "Layers" ? layer_paths : ctx.image.repo_tags).emplace_back(s);
        }
      }
    }
  }
  if (count == 0) return Status::error(where + ": lists no image");
  if (config_path.empty()) return Status::error(where + ": no Config");
  return {};
}

Status read_config(Context& ctx, const std::string& where, std::vector<std::string>& diff_ids) {
  simdjson::padded_string json(ctx.image.config);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (auto err = parser.iterate(json).get(doc)) return json_error(where, err);
  object root;
  if (auto err = doc.get_object().get(root)) return json_error(where, err);
  // Offsets into the padded copy map one-to-one onto ctx.image.config.
  const char* base = json.data();
  bool has_rootfs = false;
  for (auto field : root) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return json_error(where, err);
    if (key == "rootfs") {
      has_rootfs = true;
      object rootfs;
      if (auto err = field.value().get_object().get(rootfs))
        return json_error(where + ": rootfs", err);
      array ids;
      if (auto err = rootfs["diff_ids"].get_array().get(ids))
        return json_error(where + ": rootfs.diff_ids", err);
      for (auto id : ids) {
        std::string_view s;
        if (auto err = id.get_string().get(s)) return json_error(where + ": rootfs.diff_ids", err);
        if (digest_hex(s).empty())
          return Status::error(where + ": rootfs.diff_ids: malformed digest '" + std::string(s) +
                               "'");
        diff_ids.emplace_back(s);
      }
    } else if (key == "history") {
      ctx.image.has_history = true;
      array list;
      if (auto err = field.value().get_array().get(list))
        return json_error(where + ": history", err);
      for (auto item : list) {
        object entry;
        if (auto err = item.get_object().get(entry)) return json_error(where + ": history", err);
        std::string_view raw;
        if (auto err = entry.raw_json().get(raw)) return json_error(where + ": history", err);
        HistoryEntry h{std::string_view(ctx.image.config).substr(raw.data() - base, raw.size())};
        // raw_json() consumed the object; look at it again for empty_layer.
        simdjson::padded_string one(raw);
        simdjson::ondemand::parser p2;
        simdjson::ondemand::document d2;
        bool empty = false;
        if (!p2.iterate(one).get(d2)) {
          auto v = d2["empty_layer"];
          bool b = false;
          if (!v.get_bool().get(b)) empty = b;
        }
        h.empty_layer = empty;
        ctx.image.history.push_back(h);
      }
    }
  }
  if (!has_rootfs) return Status::error(where + ": no rootfs");
  return {};
}

}  // namespace

Status open_image(Context& ctx) {
  const std::string& spec = ctx.opts.image;
  constexpr std::string_view kArchive = "docker-archive:";
  if (spec == "-") {
    ctx.input_name = "-";
    DSQ_TRY(spool_stdin(temp_dir(ctx.opts.tmp_dir), ctx.input));
  } else if (spec.starts_with(kArchive)) {
    ctx.input_name = spec.substr(kArchive.size());
    DSQ_TRY(ctx.input.open(ctx.input_name));
  } else if (spec.starts_with("oci:") || spec.starts_with("oci-archive:")) {
    return Status::error(
        spec + ": OCI layout inputs are not supported by this build; use docker-archive:PATH");
  } else {
    ctx.input_name = spec;  // a daemon image, already saved and mapped by save_from_daemon
  }
  if (ctx.input.empty())
    return Status::error(ctx.input_name + ": empty file, not a docker save archive");

  OuterIndex outer;
  DSQ_TRY(list_outer(ctx.input, outer));
  std::string config_path;
  std::vector<std::string> layer_paths;
  DSQ_TRY(read_manifest(ctx, outer, config_path, layer_paths));
  Bytes config;
  DSQ_TRY(find_file(ctx.input, outer, config_path, config));
  ctx.image.config.assign(reinterpret_cast<const char*>(config.data()), config.size());
  std::vector<std::string> diff_ids;
  std::string where = ctx.input_name + ":" + config_path;
  DSQ_TRY(read_config(ctx, where, diff_ids));
  if (diff_ids.size() != layer_paths.size())
    return Status::error(where + ": lists " + std::to_string(diff_ids.size()) +
                         " diff_ids but manifest.json lists " + std::to_string(layer_paths.size()) +
                         " layers");
  size_t history_layers = 0;
  for (const HistoryEntry& h : ctx.image.history) history_layers += !h.empty_layer;
  if (!ctx.image.has_history) {
    ctx.image.history.assign(diff_ids.size(), HistoryEntry{});
  } else if (history_layers != diff_ids.size()) {
    return Status::error(where + ": history has " + std::to_string(history_layers) +
                         " non-empty entries but rootfs has " + std::to_string(diff_ids.size()) +
                         " layers");
  }
  for (size_t i = 0; i < layer_paths.size(); ++i) {
    LayerSource l;
    l.path = layer_paths[i];
    l.name = ctx.input_name + ":" + l.path;
    DSQ_TRY(find_file(ctx.input, outer, l.path, l.blob));
    l.compression = detect_compression(l.blob);
    l.diff_id = diff_ids[i];
    if (l.compression == Compression::kNone) {
      l.tar = l.blob;
      l.blob_digest = l.diff_id;
    }
    ctx.image.layers.push_back(std::move(l));
  }
  return {};
}

}  // namespace dsq
