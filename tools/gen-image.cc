// gen-image: writes docker-save archives for the demo, the tests and the benchmarks.
//
//   gen-image sample OUT [v12|oci]        the built-in sample image (tools/demo)
//   gen-image spec SPECFILE OUT           layers described line by line:
//       layout v12|oci     tag NAME     layer [gzip|zstd]     empty CREATED_BY
//       file PATH [CONTENT] [mode=0644 uid= gid= mtime= xattr=k:v size=N]
//       dir PATH [...]   symlink PATH TARGET   hardlink PATH TARGET   fifo PATH
//       whiteout PATH (writes .wh.NAME)   opaque DIR (writes DIR/.wh..wh..opq)
//     (%XX escapes a byte in a word)
//   gen-image many OUT SEED FILES LAYERS AVG_SIZE [none|gzip|zstd [text]]
//       FILES files in layer 0, then per layer 30% overwritten and 5% deleted; random
//       contents, or with `text` words that compress about 3:1
//   gen-image bigfile OUT LAYERS TOTAL_BYTES
//       one large file overwritten in every layer, plus a few small files
#include <algorithm>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "tools/image-builder.h"

using namespace dsq::builder;

namespace {

constexpr const char* kSample =
    R"(# The demo image: overwrites, whiteouts, an opaque directory, hard links, symlinks.
layer
dir etc
file etc/os-release NAME%3Dsample
file etc/motd hello mode=0644
dir usr
dir usr/bin
file usr/bin/tool v1 mode=0755
hardlink usr/bin/tool-alias usr/bin/tool mode=0755
dir usr/share
dir usr/share/doc
file usr/share/doc/a.txt doc-a
file usr/share/doc/b.txt doc-b
dir var
dir var/cache
file var/cache/big size=200000
symlink usr/bin/sh-link /bin/busybox
empty ENV%20PATH%3D/usr/bin
layer
dir usr
dir usr/bin
file usr/bin/tool v2 mode=0755
dir var
whiteout var/cache
dir etc
file etc/motd hello%20again
empty CMD%20["/usr/bin/tool"]
layer
dir usr
dir usr/share
dir usr/share/doc
opaque usr/share/doc
file usr/share/doc/readme new-docs
file etc.wh.keep ordinary-name
symlink etc/dangling /nowhere
layer
dir usr
dir usr/bin
file usr/bin/extra x mode=0700 xattr=user.note:squashed
)";

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string random_bytes(uint64_t& seed, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = splitmix(seed);
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

// Text-like bytes (words of a fixed vocabulary): compresses about 3:1 with gzip -6, as source
// code, scripts and documentation in real images do.
std::string text_bytes(uint64_t& seed, size_t n) {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w;
    uint64_t s = 7;
    for (int i = 0; i < 4096; ++i) {
      std::string word(2 + splitmix(s) % 9, 'a');
      for (char& c : word) c = static_cast<char>('a' + splitmix(s) % 26);
      w.push_back(word);
    }
    return w;
  }();
  std::string s;
  s.reserve(n + 16);
  while (s.size() < n) {
    uint64_t r = splitmix(seed);
    s += words[r % words.size()];
    s += (r >> 32) % 12 == 0 ? '\n' : ' ';
  }
  s.resize(n);
  return s;
}

int fail(const dsq::Status& st) {
  std::cerr << "gen-image: " << st.message() << "\n";
  return 1;
}

int many(const std::string& out, uint64_t seed, size_t files, size_t layers, size_t avg,
         dsq::Compression c, bool text) {
  ImageSpec spec;
  spec.tag = "bench/many:latest";
  const size_t dirs = std::max<size_t>(1, files / 100);
  auto dir_name = [](size_t d) {
    char b[32];
    std::snprintf(b, sizeof b, "d%05zu", d);
    return std::string(b);
  };
  auto file_name = [&](size_t f) {
    char b[48];
    std::snprintf(b, sizeof b, "d%05zu/f%07zu", f % dirs, f);
    return std::string(b);
  };
  std::vector<bool> alive(files, true);
  for (size_t l = 0; l < layers; ++l) {
    Layer layer;
    layer.compression = c;
    // Group this layer's work per directory, in order, as a filesystem walk would.
    std::vector<std::vector<std::pair<size_t, bool>>> per_dir(dirs);  // (file, deleted?)
    for (size_t f = 0; f < files; ++f) {
      if (!alive[f]) continue;
      if (l == 0) {
        per_dir[f % dirs].push_back({f, false});
        continue;
      }
      uint64_t r = splitmix(seed) % 100;
      if (r < 5) {
        per_dir[f % dirs].push_back({f, true});
        alive[f] = false;
      } else if (r < 35)
        per_dir[f % dirs].push_back({f, false});
    }
    for (size_t d = 0; d < dirs; ++d) {
      if (per_dir[d].empty()) continue;
      Entry dir{Kind::kDir, dir_name(d), "", 0755};
      layer.entries.push_back(dir);
      for (auto [f, deleted] : per_dir[d]) {
        Entry e;
        e.path = file_name(f);
        if (deleted) {
          e.kind = Kind::kWhiteout;
        } else
          e.content = text ? text_bytes(seed, splitmix(seed) % (2 * avg + 1))
                           : random_bytes(seed, splitmix(seed) % (2 * avg + 1));
        layer.entries.push_back(std::move(e));
      }
    }
    spec.layers.push_back(std::move(layer));
  }
  dsq::Status st = write_archive(spec, out);
  return st.ok() ? 0 : fail(st);
}

int bigfile(const std::string& out, size_t layers, uint64_t total) {
  ImageSpec spec;
  spec.tag = "bench/bigfile:latest";
  uint64_t seed = 42;
  for (size_t l = 0; l < layers; ++l) {
    Layer layer;
    layer.entries.push_back({Kind::kDir, "data", "", 0755});
    layer.entries.push_back(
        {Kind::kFile, "data/blob", random_bytes(seed, total / layers - 64 * 1024), 0644});
    layer.entries.push_back({Kind::kDir, "etc", "", 0755});
    for (int i = 0; i < 16; ++i)
      layer.entries.push_back({Kind::kFile,
                               "etc/conf" + std::to_string(l) + "-" + std::to_string(i),
                               random_bytes(seed, 2048), 0644});
    spec.layers.push_back(std::move(layer));
  }
  dsq::Status st = write_archive(spec, out);
  return st.ok() ? 0 : fail(st);
}

}  // namespace

int main(int argc, char** argv) {
  std::setlocale(LC_ALL, "C.UTF-8");
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "sample" && argc >= 3) {
    ImageSpec spec;
    if (auto st = parse_spec(kSample, spec); !st.ok()) return fail(st);
    spec.layout = argc > 3 && std::string(argv[3]) == "v12" ? Layout::kV12 : Layout::kOci;
    auto st = write_archive(spec, argv[2]);
    return st.ok() ? 0 : fail(st);
  }
  if (mode == "spec" && argc == 4) {
    std::ifstream in(argv[2]);
    std::stringstream text;
    text << in.rdbuf();
    ImageSpec spec;
    if (auto st = parse_spec(text.str(), spec); !st.ok()) return fail(st);
    auto st = write_archive(spec, argv[3]);
    return st.ok() ? 0 : fail(st);
  }
  if (mode == "many" && argc >= 7) {
    std::string c = argc > 7 ? argv[7] : "none";
    bool text = argc > 8 && std::string(argv[8]) == "text";
    return many(argv[2], std::stoull(argv[3]), std::stoull(argv[4]), std::stoull(argv[5]),
                std::stoull(argv[6]),
                c == "zstd"   ? dsq::Compression::kZstd
                : c == "gzip" ? dsq::Compression::kGzip
                              : dsq::Compression::kNone,
                text);
  }
  if (mode == "bigfile" && argc == 5)
    return bigfile(argv[2], std::stoull(argv[3]), std::stoull(argv[4]));
  std::cerr << "usage: gen-image sample OUT [v12|oci] | spec SPECFILE OUT | many OUT SEED FILES "
               "LAYERS AVG_SIZE [none|gzip|zstd [text]]"
               " | bigfile OUT LAYERS TOTAL_BYTES\n";
  return 2;
}
