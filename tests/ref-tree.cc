// ref-tree: applies every layer of a docker-archive with the reference applier and prints the
// resulting filesystem, one line per path (Tree::listing). The scale runs compare the original
// image's listing with the squashed image's. Layers are read from a mapping, so a 10 GB layer
// costs page cache, not memory.
//   ref-tree ARCHIVE
#include <simdjson.h>

#include <cstdio>
#include <map>

#include "io/mapped-file.h"
#include "io/tar-reader.h"
#include "tests/reference-applier.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: ref-tree ARCHIVE\n");
    return 2;
  }
  dsq::MappedFile archive;
  if (dsq::Status st = archive.open(argv[1]); !st.ok()) {
    std::fprintf(stderr, "ref-tree: %s\n", st.message().c_str());
    return 1;
  }
  // The archive's members: name -> bytes.
  std::map<std::string, std::string_view> members;
  dsq::TarReader reader(archive.bytes(), argv[1]);
  std::string last;
  uint64_t last_size = 0;
  auto close_last = [&](uint64_t end) {
    if (last.empty()) return;
    uint64_t data = end - (last_size + 511) / 512 * 512;
    members[last] = {reinterpret_cast<const char*>(archive.bytes().data()) + data, last_size};
  };
  for (;;) {
    dsq::TarEntry e;
    bool done = false;
    if (dsq::Status st = reader.next(e, done); !st.ok()) {
      std::fprintf(stderr, "ref-tree: %s\n", st.message().c_str());
      return 1;
    }
    close_last(done ? reader.end_offset() : e.offset);
    if (done) break;
    last = e.type == dsq::TarType::kFile ? std::string(e.path) : "";
    last_size = e.size;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element manifest;
  std::string_view text = members["manifest.json"];
  if (parser.parse(text.data(), text.size()).get(manifest)) {
    std::fprintf(stderr, "ref-tree: %s: no manifest.json\n", argv[1]);
    return 1;
  }
  dsq::ref::Tree tree;
  for (auto layer : manifest.at(0)["Layers"].get_array()) {
    std::string path(layer.get_string().value());
    std::string err = tree.apply(members[path]);
    if (!err.empty()) {
      std::fprintf(stderr, "ref-tree: %s: %s\n", path.c_str(), err.c_str());
      return 1;
    }
  }
  for (const std::string& line : tree.listing()) std::printf("%s\n", line.c_str());
  return 0;
}
