#include "tests/scenario.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/emit-layer.h"
#include "engine/layer-index.h"
#include "engine/path-map.h"
#include "tests/reference-applier.h"
#include "tools/image-builder.h"

namespace dsq::test {

namespace {

std::vector<std::string> list_entries(const std::string& tar) {
  std::vector<std::string> out;
  archive* r = archive_read_new();
  archive_read_support_format_tar(r);
  archive_read_open_memory(r, tar.data(), tar.size());
  archive_entry* e;
  while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
    std::string line;
    if (archive_entry_hardlink(e))
      line = std::string("h ") + archive_entry_pathname(e) + " -> " + archive_entry_hardlink(e);
    else if (archive_entry_filetype(e) == AE_IFDIR)
      line = std::string("d ") + archive_entry_pathname(e);
    else if (archive_entry_filetype(e) == AE_IFLNK)
      line = std::string("l ") + archive_entry_pathname(e) + " -> " + archive_entry_symlink(e);
    else
      line = std::string("f ") + archive_entry_pathname(e);
    out.push_back(line);
  }
  archive_read_free(r);
  return out;
}

}  // namespace

Scenario squash_spec(const std::string& spec, size_t first_squashed) {
  Scenario s;
  builder::ImageSpec image;
  if (Status st = builder::parse_spec(spec, image); !st.ok()) {
    s.error = st.message();
    return s;
  }
  std::vector<Bytes> tars;
  std::vector<std::string> names;
  for (const builder::Layer& l : image.layers) {
    if (l.empty) continue;
    s.inputs.push_back(builder::layer_tar(l));
  }
  // The engine drops pages it has read with MADV_DONTNEED, which is only harmless on file
  // mappings (as in real runs), so each tar is served from a mapped memfd.
  std::vector<MappedFile> files(s.inputs.size());
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    int mfd = memfd_create("input", 0);
    if (write(mfd, s.inputs[i].data(), s.inputs[i].size()) !=
        static_cast<ssize_t>(s.inputs[i].size()))
      s.error = "memfd";
    if (Status st = files[i].open_fd(mfd, "layer" + std::to_string(i)); !st.ok())
      s.error = st.message();
    tars.push_back(files[i].bytes());
    names.push_back("layer" + std::to_string(i));
  }
  if (!s.error.empty()) return s;
  std::vector<LayerIndex> index(tars.size());
  for (size_t i = 0; i < tars.size(); ++i) {
    if (Status st = index_layer(tars[i], names[i], index[i]); !st.ok()) {
      s.error = st.message();
      return s;
    }
  }
  PathMap map;
  Plan plan;
  if (Status st = resolve_paths(index, first_squashed, map); !st.ok()) {
    s.error = st.message();
    return s;
  }
  if (Status st = plan_output(index, tars, names, map, first_squashed, 0, plan); !st.ok()) {
    s.error = st.message();
    return s;
  }
  s.stats = plan.stats;
  int fd = memfd_create("layer", 0);
  FdSink sink(fd, "memfd");
  EmittedLayer emitted;
  if (Status st = emit_layer(plan, tars, {}, sink, emitted); !st.ok()) {
    s.error = st.message();
    close(fd);
    return s;
  }
  s.layer.resize(plan.layer_size);
  if (pread(fd, s.layer.data(), s.layer.size(), 0) != static_cast<ssize_t>(s.layer.size()))
    s.error = "short layer";
  close(fd);
  s.entries = list_entries(s.layer);

  ref::Tree expected, actual;
  for (const std::string& t : s.inputs) {
    std::string err = expected.apply(t);
    if (!err.empty()) s.expected.push_back("APPLY ERROR " + err);
  }
  for (size_t i = 0; i < first_squashed; ++i) actual.apply(s.inputs[i]);
  std::string err = actual.apply(s.layer);
  if (!err.empty()) s.actual.push_back("APPLY ERROR " + err);
  auto e = expected.listing(), a = actual.listing();
  s.expected.insert(s.expected.end(), e.begin(), e.end());
  s.actual.insert(s.actual.end(), a.begin(), a.end());
  return s;
}

}  // namespace dsq::test
