#include "engine/oci-layout.h"

#include <simdjson.h>
#include <sys/utsname.h>

#include <set>

#include "engine/path-map.h"
#include "io/json.h"
#include "io/sha256.h"

namespace dsq {

namespace {

constexpr int kMaxDepth = 8;

struct Descriptor {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  std::string ref_name;    // org.opencontainers.image.ref.name
  std::string image_name;  // io.containerd.image.name
  bool has_platform = false;
  Platform platform;
  bool attestation = false;
};

bool is_index(const std::string& t) {
  return t == "application/vnd.oci.image.index.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.list.v2+json";
}

bool is_manifest(const std::string& t) {
  return t == "application/vnd.oci.image.manifest.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.v2+json";
}

Status layer_compression(const std::string& t, const std::string& where, Compression& c) {
  for (const char* plain : {"application/vnd.oci.image.layer.v1.tar",
                            "application/vnd.oci.image.layer.nondistributable.v1.tar",
                            "application/vnd.docker.image.rootfs.diff.tar"}) {
    std::string p = plain;
    if (t == p) return c = Compression::kNone, Status{};
    if (t == p + "+gzip" || t == p + ".gzip") return c = Compression::kGzip, Status{};
    if (t == p + "+zstd" || t == p + ".zstd") return c = Compression::kZstd, Status{};
  }
  if (t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    return c = Compression::kGzip, Status{};
  return Status::error(where + ": unsupported layer media type '" + t + "'");
}

std::string text_of(simdjson::dom::element e, const char* key) {
  std::string_view v;
  return e[key].get(v) ? std::string() : std::string(v);
}

Status read_descriptor(simdjson::dom::element e, const std::string& where, Descriptor& d) {
  std::string_view digest;
  if (e["digest"].get(digest)) return Status::error(where + ": descriptor without a digest");
  d.digest = digest;
  if (blob_path_of(d.digest).empty())
    return Status::error(where + ": unsupported or malformed digest '" + d.digest + "'");
  int64_t size = 0;
  if (e["size"].get(size) || size < 0)
    return Status::error(where + ": descriptor " + d.digest + " without a valid size");
  d.size = static_cast<uint64_t>(size);
  d.media_type = text_of(e, "mediaType");
  simdjson::dom::element annotations;
  if (!e["annotations"].get(annotations)) {
    d.ref_name = text_of(annotations, "org.opencontainers.image.ref.name");
    d.image_name = text_of(annotations, "io.containerd.image.name");
    d.attestation = text_of(annotations, "vnd.docker.reference.type") == "attestation-manifest";
  }
  simdjson::dom::element platform;
  if (!e["platform"].get(platform)) {
    d.has_platform = true;
    d.platform = {text_of(platform, "os"), text_of(platform, "architecture"),
                  text_of(platform, "variant")};
    if (d.platform.os == "unknown" && d.platform.architecture == "unknown") d.attestation = true;
  }
  return {};
}

// Reads the blob a descriptor names, checks its size and digest, and parses it.
Status load_blob(const BlobLookup& lookup, const std::string& where, const Descriptor& d,
                 simdjson::dom::parser& parser, simdjson::dom::element& doc) {
  const std::string path = blob_path_of(d.digest);
  Bytes bytes;
  DSQ_TRY(lookup(path, bytes));
  if (bytes.size() != d.size)
    return Status::error(where + ":" + path + ": " + std::to_string(bytes.size()) +
                         " bytes, but its descriptor says " + std::to_string(d.size));
  if (sha256_digest(bytes) != d.digest)
    return Status::error(where + ":" + path + ": content does not match its digest");
  if (auto err = parser.parse(reinterpret_cast<const char*>(bytes.data()), bytes.size()).get(doc))
    return json_error(where + ":" + path, err);
  return {};
}

Status read_descriptors(simdjson::dom::element doc, const std::string& where,
                        std::vector<Descriptor>& out) {
  simdjson::dom::array list;
  if (doc["manifests"].get(list)) return Status::error(where + ": no manifests list");
  for (auto e : list) {
    Descriptor d;
    DSQ_TRY(read_descriptor(e, where, d));
    out.push_back(std::move(d));
  }
  return {};
}

bool matches(const Platform& have, const Platform& want) {
  return have.os == want.os && have.architecture == want.architecture &&
         (want.variant.empty() || have.variant == want.variant);
}

// One descriptor of a list: the only image there is, or the one for `platform`.
Status pick(const std::vector<Descriptor>& all, const Platform& platform, const std::string& where,
            Descriptor& out) {
  std::vector<const Descriptor*> images;
  for (const Descriptor& d : all)
    if (!d.attestation) images.push_back(&d);
  if (images.empty()) return Status::error(where + ": lists no image manifest");
  std::vector<const Descriptor*> fit;
  for (const Descriptor* d : images)
    if (d->has_platform && matches(d->platform, platform)) fit.push_back(d);
  if (!fit.empty()) {
    out = *fit.front();
    return {};
  }
  // A single image is squashed whatever its platform (squashing does not run it).
  if (images.size() == 1) {
    out = *images.front();
    return {};
  }
  std::string have;
  for (const Descriptor* d : images)
    have += (have.empty() ? "" : ", ") + (d->has_platform ? d->platform.text() : d->digest);
  return Status::error(where + ": no image for platform " + platform.text() + " (it has " + have +
                       "; choose one with --platform)");
}

Status descend(const BlobLookup& lookup, const std::string& where, const Descriptor& d,
               const Platform& platform, int depth, OciImage& out) {
  if (depth > kMaxDepth)
    return Status::error(where + ": image indexes nested more than " + std::to_string(kMaxDepth) +
                         " deep (a cycle?) at " + d.digest);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  DSQ_TRY(load_blob(lookup, where, d, parser, doc));
  const std::string here = where + ":" + blob_path_of(d.digest);
  std::string type = d.media_type.empty() ? text_of(doc, "mediaType") : d.media_type;
  if (type.empty()) {
    simdjson::dom::element probe;
    type = !doc["manifests"].get(probe) ? "application/vnd.oci.image.index.v1+json"
                                        : "application/vnd.oci.image.manifest.v1+json";
  }
  if (is_index(type)) {
    std::vector<Descriptor> children;
    DSQ_TRY(read_descriptors(doc, here, children));
    Descriptor next;
    DSQ_TRY(pick(children, platform, here, next));
    return descend(lookup, where, next, platform, depth + 1, out);
  }
  if (!is_manifest(type))
    return Status::error(here + ": unsupported manifest media type '" + type + "'");
  simdjson::dom::element config;
  if (doc["config"].get(config)) return Status::error(here + ": manifest without a config");
  Descriptor c;
  DSQ_TRY(read_descriptor(config, here + ": config", c));
  out.config_digest = c.digest;
  out.config_size = c.size;
  simdjson::dom::array layers;
  if (doc["layers"].get(layers)) return Status::error(here + ": manifest without layers");
  for (auto e : layers) {
    Descriptor l;
    DSQ_TRY(read_descriptor(e, here + ": layers", l));
    OciLayer layer{l.digest, l.size, Compression::kNone};
    DSQ_TRY(layer_compression(l.media_type, here + ": layer " + l.digest, layer.compression));
    out.layers.push_back(layer);
  }
  if (out.layers.size() > kMaxLayers)
    return Status::error(here + ": lists " + std::to_string(out.layers.size()) +
                         " layers; at most " + std::to_string(kMaxLayers) + " are supported");
  return {};
}

}  // namespace

std::string Platform::text() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

Platform host_platform() {
  utsname u{};
  uname(&u);
  std::string m = u.machine;
  Platform p{"linux", m, ""};
  if (m == "x86_64") p.architecture = "amd64";
  if (m == "aarch64") p.architecture = "arm64";
  if (m == "i686" || m == "i386") p.architecture = "386";
  if (m.starts_with("armv7")) p = {"linux", "arm", "v7"};
  return p;
}

Status parse_platform(const std::string& text, Platform& out) {
  size_t a = text.find('/');
  size_t b = a == std::string::npos ? a : text.find('/', a + 1);
  if (a == std::string::npos || a == 0 || a + 1 == text.size() ||
      (b != std::string::npos && (b + 1 == text.size() || text.find('/', b + 1) != text.npos)))
    return Status::error("--platform '" + text + "': expected os/arch[/variant]");
  out.os = text.substr(0, a);
  out.architecture = text.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  out.variant = b == std::string::npos ? "" : text.substr(b + 1);
  return {};
}

std::string blob_path_of(const std::string& digest) {
  std::string_view hex = digest_hex(digest);
  return hex.empty() ? std::string() : "blobs/sha256/" + std::string(hex);
}

Status read_oci_layout(const std::string& where, const BlobLookup& lookup, const std::string& ref,
                       const Platform& platform, OciImage& out) {
  Bytes bytes;
  DSQ_TRY(lookup("index.json", bytes));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(reinterpret_cast<const char*>(bytes.data()), bytes.size()).get(doc))
    return json_error(where + ":index.json", err);
  std::vector<Descriptor> all;
  DSQ_TRY(read_descriptors(doc, where + ":index.json", all));
  std::vector<Descriptor> named;
  std::string names;             // every name, for messages
  std::set<std::string> images;  // one name per image
  for (const Descriptor& d : all) {
    if (!ref.empty() && (d.ref_name == ref || d.image_name == ref)) named.push_back(d);
    for (const std::string& n : {d.ref_name, d.image_name})
      if (!n.empty() && names.find("'" + n + "'") == std::string::npos)
        names += (names.empty() ? "'" : ", '") + n + "'";
    if (!d.ref_name.empty() || !d.image_name.empty())
      images.insert(d.image_name.empty() ? d.ref_name : d.image_name);
  }
  if (!ref.empty() && named.empty())
    return Status::error(where + ":index.json: no image named '" + ref + "'" +
                         (names.empty() ? "" : " (it has " + names + ")"));
  if (ref.empty() && images.size() > 1)
    return Status::error(where + ":index.json: holds several images (" + names + "); name one as " +
                         "oci:DIR:REF or oci-archive:PATH:REF");
  Descriptor top;
  DSQ_TRY(pick(ref.empty() ? all : named, platform, where + ":index.json", top));
  out.image_name = top.image_name.empty() ? top.ref_name : top.image_name;
  return descend(lookup, where, top, platform, 1, out);
}

}  // namespace dsq
