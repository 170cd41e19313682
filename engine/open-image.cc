// Opening an image: map the archive (or spool a stdin stream once and map that) and list the
// outer tar's entries, or, for an OCI layout directory, map each file as it is asked for. Then
// read either manifest.json (docker-archive) or index.json and the manifests under it (OCI), the
// config, and the layer blobs as slices of the mappings. Paths come from the manifests, never
// from a naming convention, and symlink entries (how `docker save` shares a layer between
// images) are followed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/oci-layout.h"
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
      return Status::error(std::string("-: cannot read standard input: ") + errno_text(errno));
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
  std::unordered_set<std::string_view> files;
  for (auto& [path, e] : entries) {
    // Two members of one name: `docker load` would take the last, another reader the first.
    if (e.type != TarType::kDir && !files.insert(path).second)
      return Status::error(input.name() + ":" + path + ": appears twice in the archive");
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
      return Status::error(input.name() + ":" + path + ": missing from the archive");
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
  if (layer_paths.size() > kMaxLayers)
    return Status::error(where + ": lists " + std::to_string(layer_paths.size()) +
                         " layers; at most " + std::to_string(kMaxLayers) + " are supported");
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

// The config's diff_ids, the manifest's layers and the history's non-empty entries must agree.
Status check_layer_count(Context& ctx, const std::string& where, size_t diff_ids, size_t layers,
                         const char* manifest) {
  if (diff_ids != layers)
    return Status::error(where + ": lists " + std::to_string(diff_ids) + " diff_ids but " +
                         manifest + " lists " + std::to_string(layers) + " layers");
  size_t history_layers = 0;
  for (const HistoryEntry& h : ctx.image.history) history_layers += !h.empty_layer;
  if (!ctx.image.has_history) {
    ctx.image.history.assign(diff_ids, HistoryEntry{});
  } else if (history_layers != diff_ids) {
    return Status::error(where + ": history has " + std::to_string(history_layers) +
                         " non-empty entries but rootfs has " + std::to_string(diff_ids) +
                         " layers");
  }
  return {};
}

// The input spec: kind, path and, for OCI layouts, the image's ref name.
struct InputSpec {
  enum class Kind { kDockerArchive, kStdin, kDaemon, kOciDir, kOciArchive } kind;
  std::string path;
  std::string ref;
};

// "oci:DIR[:REF]": the path is the longest prefix before a colon that exists (a ref such as
// "docker.io/app:1" has colons of its own); with none, the whole text.
void split_ref(const std::string& text, InputSpec& spec) {
  struct stat st {};
  spec.path = text;
  if (stat(text.c_str(), &st) == 0) return;
  for (size_t colon = text.rfind(':'); colon != std::string::npos && colon > 0;
       colon = text.rfind(':', colon - 1)) {
    if (stat(text.substr(0, colon).c_str(), &st) == 0) {
      spec.path = text.substr(0, colon);
      spec.ref = text.substr(colon + 1);
      return;
    }
  }
}

InputSpec parse_input(const std::string& text) {
  InputSpec spec{InputSpec::Kind::kDaemon, text, ""};
  if (text == "-") {
    spec.kind = InputSpec::Kind::kStdin;
  } else if (text.starts_with("docker-archive:")) {
    spec.kind = InputSpec::Kind::kDockerArchive;
    spec.path = text.substr(15);
  } else if (text.starts_with("oci-archive:")) {
    spec.kind = InputSpec::Kind::kOciArchive;
    split_ref(text.substr(12), spec);
  } else if (text.starts_with("oci:")) {
    spec.kind = InputSpec::Kind::kOciDir;
    split_ref(text.substr(4), spec);
  }
  return spec;
}

// The docker-archive route: manifest.json names the config and the layer files.
Status open_docker_archive(Context& ctx, const OuterIndex& outer) {
  std::string config_path;
  std::vector<std::string> layer_paths;
  DSQ_TRY(read_manifest(ctx, outer, config_path, layer_paths));
  Bytes config;
  DSQ_TRY(find_file(ctx.input, outer, config_path, config));
  ctx.image.config.assign(reinterpret_cast<const char*>(config.data()), config.size());
  std::vector<std::string> diff_ids;
  std::string where = ctx.input_name + ":" + config_path;
  DSQ_TRY(read_config(ctx, where, diff_ids));
  DSQ_TRY(check_layer_count(ctx, where, diff_ids.size(), layer_paths.size(), "manifest.json"));
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

// The OCI route: index.json down to one manifest; every blob is named by its digest.
Status open_oci_layout(Context& ctx, const BlobLookup& lookup, const std::string& ref) {
  Platform platform = host_platform();
  if (!ctx.opts.platform.empty()) DSQ_TRY(parse_platform(ctx.opts.platform, platform));
  OciImage image;
  DSQ_TRY(read_oci_layout(ctx.input_name, lookup, ref, platform, image));
  if (!image.image_name.empty()) ctx.image.repo_tags.push_back(image.image_name);
  const std::string config_path = blob_path_of(image.config_digest);
  const std::string where = ctx.input_name + ":" + config_path;
  Bytes config;
  DSQ_TRY(lookup(config_path, config));
  if (config.size() != image.config_size || sha256_digest(config) != image.config_digest)
    return Status::error(where + ": config does not match its descriptor's size and digest");
  ctx.image.config.assign(reinterpret_cast<const char*>(config.data()), config.size());
  std::vector<std::string> diff_ids;
  DSQ_TRY(read_config(ctx, where, diff_ids));
  DSQ_TRY(check_layer_count(ctx, where, diff_ids.size(), image.layers.size(), "the manifest"));
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const OciLayer& layer = image.layers[i];
    LayerSource l;
    l.path = blob_path_of(layer.digest);
    l.name = ctx.input_name + ":" + l.path;
    DSQ_TRY(lookup(l.path, l.blob));
    if (l.blob.size() != layer.size)
      return Status::error(l.name + ": " + std::to_string(l.blob.size()) +
                           " bytes, but the manifest says " + std::to_string(layer.size));
    l.compression = layer.compression;
    if (detect_compression(l.blob) != l.compression)
      return Status::error(l.name + "@0: content is not what its media type says (" +
                           oci_layer_media_type(l.compression) + ")");
    l.diff_id = diff_ids[i];
    l.blob_digest = layer.digest;
    if (l.compression == Compression::kNone) {
      if (l.blob_digest != l.diff_id)
        return Status::error(l.name + ": uncompressed layer named " + l.blob_digest +
                             " but the config's diff_id is " + l.diff_id);
      l.tar = l.blob;
    }
    ctx.image.layers.push_back(std::move(l));
  }
  return {};
}

}  // namespace

Status open_image(Context& ctx) {
  const InputSpec spec = parse_input(ctx.opts.image);
  using Kind = InputSpec::Kind;
  ctx.input_name = spec.path;
  if (spec.kind == Kind::kOciDir) {
    // Each blob of the directory is mapped on its own when first asked for.
    const std::string dir = spec.path;
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Status::error(dir + ": not a directory (oci:DIR[:REF] names an OCI image layout)");
    BlobLookup lookup = [&ctx, dir](const std::string& path, Bytes& out) -> Status {
      MappedFile& file = ctx.input_files.emplace_back();
      Status opened = file.open(dir + "/" + path);
      struct stat blob {};
      if (!opened.ok() && stat((dir + "/" + path).c_str(), &blob) != 0 && errno == ENOENT)
        return Status::error(dir + ":" + path + ": missing from the layout");
      if (!opened.ok()) return opened;
      out = file.bytes();
      return {};
    };
    return open_oci_layout(ctx, lookup, spec.ref);
  }
  if (spec.kind == Kind::kStdin) {
    DSQ_TRY(spool_stdin(temp_dir(ctx.opts.tmp_dir), ctx.input));
  } else if (spec.kind != Kind::kDaemon) {  // a daemon image was saved and mapped already
    DSQ_TRY(ctx.input.open(spec.path));
  }
  if (ctx.input.empty())
    return Status::error(ctx.input_name + ": empty file, not an image archive");
  OuterIndex outer;
  DSQ_TRY(list_outer(ctx.input, outer));
  BlobLookup lookup = [&ctx, &outer](const std::string& path, Bytes& out) {
    return find_file(ctx.input, outer, path, out);
  };
  if (spec.kind == Kind::kOciArchive) return open_oci_layout(ctx, lookup, spec.ref);
  // A docker-archive without manifest.json may still be an OCI layout (what some tools save).
  if (!outer.count("manifest.json") && outer.count("index.json"))
    return open_oci_layout(ctx, lookup, "");
  return open_docker_archive(ctx, outer);
}

}  // namespace dsq
