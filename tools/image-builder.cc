// Layers are written with libarchive (pax), compressed with libarchive's gzip/zstd filters,
// and packed into an outer tar in either docker save layout. One layer is held in memory at a
// time.
#include "tools/image-builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <sstream>

#include "engine/image-ref.h"
#include "io/json.h"
#include "io/sha256.h"
#include "io/tar-header.h"
#include "io/temp-files.h"

namespace dsq::builder {

namespace {

la_ssize_t append(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

std::string compress(const std::string& tar, Compression c) {
  std::string out;
  archive* w = archive_write_new();
  archive_write_set_format_raw(w);
  if (c == Compression::kGzip) archive_write_add_filter_gzip(w);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(w);
  archive_write_set_bytes_per_block(w, 0);
  archive_write_open(w, &out, nullptr, append, nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "layer");
  archive_write_header(w, e);
  archive_write_data(w, tar.data(), tar.size());
  archive_entry_free(e);
  archive_write_close(w);
  archive_write_free(w);
  return out;
}

std::string whiteout_name(const std::string& path, const char* prefix) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return prefix + path;
  return path.substr(0, slash + 1) + prefix + path.substr(slash + 1);
}

}  // namespace

std::string layer_tar(const Layer& layer) {
  std::string out;
  archive* w = archive_write_new();
  archive_write_set_format_pax_restricted(w);
  archive_write_set_options(w, "xattrheader=SCHILY");  // as Docker and GNU tar write xattrs
  archive_write_set_bytes_per_block(w, 0);
  archive_write_open(w, &out, nullptr, append, nullptr);
  for (const Entry& in : layer.entries) {
    archive_entry* e = archive_entry_new();
    std::string path = in.path;
    if (in.kind == Kind::kWhiteout) path = whiteout_name(in.path, ".wh.");
    if (in.kind == Kind::kOpaque)
      path = in.path.empty() ? ".wh..wh..opq" : in.path + "/.wh..wh..opq";
    archive_entry_copy_pathname(e, path.c_str());
    archive_entry_set_perm(e, in.mode);
    archive_entry_set_uid(e, in.uid);
    archive_entry_set_gid(e, in.gid);
    archive_entry_set_mtime(e, in.mtime, 0);
    for (const auto& [k, v] : in.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    switch (in.kind) {
      case Kind::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(in.content.size()));
        break;
      case Kind::kDir:
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case Kind::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_copy_symlink(e, in.content.c_str());
        break;
      case Kind::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_copy_hardlink(e, in.content.c_str());
        archive_entry_set_size(e, 0);
        break;
      case Kind::kFifo:
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
      case Kind::kWhiteout:
      case Kind::kOpaque:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0);
        archive_entry_set_size(e, 0);
        break;
    }
    archive_write_header(w, e);
    if (in.kind == Kind::kFile && !in.content.empty())
      archive_write_data(w, in.content.data(), in.content.size());
    archive_entry_free(e);
  }
  archive_write_close(w);
  archive_write_free(w);
  return out;
}

namespace {

class OuterWriter {
 public:
  explicit OuterWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status add(const std::string& name, std::string_view data) {
    EntryPtr e = make_entry(name, false, data.size(), 1700000000, 0644);
    std::string h = encode_tar_header(e.get());
    DSQ_TRY(write_all(fd_, h.data(), h.size(), path_));
    DSQ_TRY(write_all(fd_, data.data(), data.size(), path_));
    static const char zeros[1024] = {};
    return write_all(fd_, zeros, tar_padding(data.size()), path_);
  }
  Status finish() {
    static const char zeros[1024] = {};
    return write_all(fd_, zeros, sizeof zeros, path_);
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Status write_archive(const ImageSpec& spec, const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error(path + ": cannot create");
  OuterWriter out(fd, path);
  std::vector<std::string> diff_ids, layer_paths, blob_digests, history;
  std::vector<size_t> blob_sizes;
  std::vector<Compression> kinds;
  for (const Layer& layer : spec.layers) {
    std::string entry =
        "{\"created\":\"2023-11-14T22:13:20Z\",\"created_by\":" + json_quote(layer.created_by);
    if (layer.empty) {
      history.push_back(entry + ",\"empty_layer\":true}");
      continue;
    }
    history.push_back(entry + "}");
    std::string tar = layer_tar(layer);
    std::string diff = sha256_digest(tar);
    std::string blob =
        layer.compression == Compression::kNone ? std::move(tar) : compress(tar, layer.compression);
    std::string digest = sha256_digest(blob);
    std::string hex(digest_hex(digest));
    std::string name = spec.layout == Layout::kOci ? "blobs/sha256/" + hex : hex + "/layer.tar";
    DSQ_TRY(out.add(name, blob));
    diff_ids.push_back(diff);
    layer_paths.push_back(name);
    blob_digests.push_back(digest);
    blob_sizes.push_back(blob.size());
    kinds.push_back(layer.compression);
  }
  std::string config = "{\"architecture\":\"amd64\",";
  if (!spec.config_extra.empty()) config += spec.config_extra + ",";
  config += "\"created\":\"2023-11-14T22:13:20Z\",\"history\":[";
  for (size_t i = 0; i < history.size(); ++i) config += (i ? "," : "") + history[i];
  config += "],\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[";
  for (size_t i = 0; i < diff_ids.size(); ++i) config += (i ? "," : "") + json_quote(diff_ids[i]);
  config += "]}}";
  std::string config_digest = sha256_digest(config);
  std::string config_hex(digest_hex(config_digest));
  std::string config_name =
      spec.layout == Layout::kOci ? "blobs/sha256/" + config_hex : config_hex + ".json";
  DSQ_TRY(out.add(config_name, config));
  if (spec.layout == Layout::kOci) {
    std::string manifest =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":" +
        json_quote(config_digest) + ",\"size\":" + std::to_string(config.size()) + "},\"layers\":[";
    for (size_t i = 0; i < blob_digests.size(); ++i)
      manifest += std::string(i ? "," : "") + "{\"mediaType\":\"" + oci_layer_media_type(kinds[i]) +
                  "\",\"digest\":" + json_quote(blob_digests[i]) +
                  ",\"size\":" + std::to_string(blob_sizes[i]) + "}";
    manifest += "]}";
    std::string md = sha256_digest(manifest);
    DSQ_TRY(out.add("blobs/sha256/" + std::string(digest_hex(md)), manifest));
    ImageRef ref;
    DSQ_TRY(parse_image_ref(spec.tag, ref));
    DSQ_TRY(out.add("index.json",
                    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
                    "vnd.oci.image.manifest.v1+json\",\"digest\":" +
                        json_quote(md) + ",\"size\":" + std::to_string(manifest.size()) +
                        ",\"annotations\":{\"io.containerd.image.name\":" + json_quote(ref.full) +
                        ",\"org.opencontainers.image.ref.name\":" + json_quote(ref.tag) + "}}]}"));
    DSQ_TRY(out.add("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  }
  std::string manifest_json = "[{\"Config\":" + json_quote(config_name) + ",\"RepoTags\":[" +
                              json_quote(spec.tag) + "],\"Layers\":[";
  for (size_t i = 0; i < layer_paths.size(); ++i)
    manifest_json += (i ? "," : "") + json_quote(layer_paths[i]);
  manifest_json += "]}]";
  DSQ_TRY(out.add("manifest.json", manifest_json));
  DSQ_TRY(out.finish());
  return close(fd) == 0 ? Status{} : Status::error(path + ": close failed");
}

namespace {

// %XX escapes let names and contents hold spaces and newlines.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Status parse_spec(const std::string& text, ImageSpec& out) {
  std::istringstream lines(text);
  std::string line;
  int lineno = 0;
  while (std::getline(lines, line)) {
    ++lineno;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string t; words >> t;) w.push_back(t);
    if (w.empty() || w[0][0] == '#') continue;
    auto bad = [&](const std::string& why) {
      return Status::error("spec line " + std::to_string(lineno) + ": " + why + ": " + line);
    };
    const std::string& op = w[0];
    if (op == "layout") {
      if (w.size() != 2) return bad("layout v12|oci");
      out.layout = w[1] == "v12" ? Layout::kV12 : Layout::kOci;
      continue;
    }
    if (op == "tag") {
      if (w.size() != 2) return bad("tag NAME");
      out.tag = w[1];
      continue;
    }
    if (op == "layer") {
      Layer l;
      l.created_by = "layer " + std::to_string(out.layers.size());
      if (w.size() > 1)
        l.compression = w[1] == "gzip"   ? Compression::kGzip
                        : w[1] == "zstd" ? Compression::kZstd
                                         : Compression::kNone;
      out.layers.push_back(l);
      continue;
    }
    if (op == "empty") {
      Layer l;
      l.empty = true;
      l.created_by = w.size() > 1 ? unescape(w[1]) : "ENV";
      out.layers.push_back(l);
      continue;
    }
    if (out.layers.empty() || out.layers.back().empty) return bad("entry outside a layer");
    Entry e;
    size_t attrs = 2;
    if (w.size() < 2) return bad("missing path");
    e.path = unescape(w[1]);
    if (op == "file") {
      e.kind = Kind::kFile;
      if (w.size() > 2 && w[2].find('=') == std::string::npos)
        e.content = unescape(w[2]), attrs = 3;
    } else if (op == "dir") {
      e.kind = Kind::kDir;
      e.mode = 0755;
    } else if (op == "symlink" || op == "hardlink") {
      if (w.size() < 3) return bad("missing target");
      e.kind = op == "symlink" ? Kind::kSymlink : Kind::kHardlink;
      e.content = unescape(w[2]);
      e.mode = op == "symlink" ? 0777 : 0644;
      attrs = 3;
    } else if (op == "whiteout") {
      e.kind = Kind::kWhiteout;
    } else if (op == "opaque") {
      e.kind = Kind::kOpaque;
    } else if (op == "fifo") {
      e.kind = Kind::kFifo;
    } else {
      return bad("unknown directive");
    }
    for (size_t i = attrs; i < w.size(); ++i) {
      size_t eq = w[i].find('=');
      if (eq == std::string::npos) return bad("expected key=value");
      std::string k = w[i].substr(0, eq), v = unescape(w[i].substr(eq + 1));
      if (k == "mode")
        e.mode = static_cast<uint32_t>(std::stoul(v, nullptr, 8));
      else if (k == "uid")
        e.uid = std::stoll(v);
      else if (k == "gid")
        e.gid = std::stoll(v);
      else if (k == "mtime")
        e.mtime = std::stoll(v);
      else if (k == "xattr") {
        size_t colon = v.find(':');
        e.xattrs.emplace_back(v.substr(0, colon),
                              colon == std::string::npos ? "" : v.substr(colon + 1));
      } else if (k == "size") {
        e.content.assign(std::stoull(v), 'x');
      } else
        return bad("unknown attribute " + k);
    }
    out.layers.back().entries.push_back(std::move(e));
  }
  return {};
}

}  // namespace dsq::builder
