// libFuzzer target for image metadata: the input's first byte picks which file of a small valid
// image is replaced by the rest of the input (manifest.json, the config, or index.json of an
// OCI layout whose manifest, config and layer blobs are valid), or whether the input is the
// whole image archive; then the engine opens the image, selects, indexes, resolves and plans.
// Tokens in the input stand for the valid image's digests and paths, so seeds and mutations
// can refer to real blobs: @CD @L1 @L2 @MD (digests), @CP @P1 @P2 (blob paths), @MS (the
// manifest's size). Any input must end in a Status.
#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/passes.h"
#include "io/sha256.h"

namespace {

std::string tar_of(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out(1 << 16, '\0');
  size_t used = 0;
  archive* w = archive_write_new();
  archive_write_set_format_pax_restricted(w);
  archive_write_open_memory(w, out.data(), out.size(), &used);
  for (const auto& [name, data] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_write_header(w, e);
    archive_write_data(w, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(w);
  archive_write_free(w);
  out.resize(used);
  return out;
}

std::string blob(const std::string& digest) { return "blobs/sha256/" + digest.substr(7); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dsq;
  if (size == 0) return 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const std::string layer = tar_of({{"etc/a", "one"}, {"etc/b", "two"}});
  static const std::string top = tar_of({{"etc/a", "three"}, {"etc/.wh.b", ""}});
  const std::string l1 = sha256_digest(layer), l2 = sha256_digest(top);
  const std::string config =
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
      "\"layers\",\"diff_ids\":[\"" +
      l1 + "\",\"" + l2 +
      "\"]},"
      "\"history\":[{\"created_by\":\"a\"},{\"created_by\":\"b\"}]}";
  const std::string cd = sha256_digest(config);
  const std::string manifest =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
      "manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd."
      "oci.image.config.v1+json\",\"digest\":\"" +
      cd + "\",\"size\":" + std::to_string(config.size()) +
      "},\"layers\":[{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" +
      l1 + "\",\"size\":" + std::to_string(layer.size()) +
      "},{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" +
      l2 + "\",\"size\":" + std::to_string(top.size()) + "}]}";
  const std::string docker = "[{\"Config\":\"" + blob(cd) +
                             "\",\"RepoTags\":[\"x:y\"],"
                             "\"Layers\":[\"" +
                             blob(l1) + "\",\"" + blob(l2) + "\"]}]";
  std::vector<std::pair<std::string, std::string>> files = {
      {blob(l1), layer}, {blob(l2), top}, {blob(sha256_digest(manifest)), manifest}};
  if (data[0] % 4 != 3) {
    const std::pair<std::string, std::string> tokens[] = {{"@CD", cd},
                                                          {"@L1", l1},
                                                          {"@L2", l2},
                                                          {"@MD", sha256_digest(manifest)},
                                                          {"@MS", std::to_string(manifest.size())},
                                                          {"@CP", blob(cd)},
                                                          {"@P1", blob(l1)},
                                                          {"@P2", blob(l2)}};
    for (const auto& [token, value] : tokens)
      for (size_t at = input.find(token); at != std::string::npos; at = input.find(token, at))
        input.replace(at, token.size(), value), at += value.size();
  }
  std::string archive;
  switch (data[0] % 4) {
    case 0:
      files.push_back({blob(cd), config}), files.push_back({"manifest.json", input});
      break;
    case 1:
      files.push_back({blob(cd), input}), files.push_back({"manifest.json", docker});
      break;
    case 2:
      files.push_back({blob(cd), config}), files.push_back({"index.json", input});
      break;
    default:
      archive = input;
      break;
  }
  if (archive.empty()) archive = tar_of(files);
  int fd = memfd_create("image", 0);
  if (write(fd, archive.data(), archive.size()) != static_cast<ssize_t>(archive.size())) abort();
  Options opts;
  opts.image = "docker-archive:/proc/self/fd/" + std::to_string(fd);
  opts.output_path = "/dev/null";
  opts.from_layer = data[0] & 4 ? "1" : "";
  Context ctx(opts);
  if (open_image(ctx).ok() && select_layers(ctx).ok() && index_layers(ctx).ok() &&
      ctx.selection.first_layer < ctx.layer_count() && resolve(ctx).ok())
    (void)plan(ctx);
  close(fd);
  return 0;
}
