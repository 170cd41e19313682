// libFuzzer target for the path map: the input is decoded into 2-5 layers over a tiny namespace
// (so that paths collide often) in gen-image's spec language, squashed in-process (index,
// resolve, plan, emit) above a fuzzed number of kept layers, and the result applied by the
// reference applier must equal the original layers applied one by one. A difference aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/scenario.h"

namespace {

const char* const kPaths[] = {"a", "a/b", "a/b/c", "a/d", "e", "e/f", "e/f/g", "h"};
constexpr size_t kPathCount = sizeof kPaths / sizeof kPaths[0];

// Hard links that point into kept layers become regular files (documented): compare without
// the link identity then.
std::vector<std::string> without_link_identity(std::vector<std::string> tree) {
  for (auto& line : tree) line = line.substr(0, line.find(" link="));
  return tree;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string spec = "layer\n";
  size_t layers = 1;
  std::map<std::string, std::string> mode_of;  // last file mode written at a path
  std::vector<std::string> written;            // paths the current layer has entries at
  for (size_t i = 1; i + 1 < size && layers <= 5; i += 2) {
    const std::string path = kPaths[data[i + 1] % kPathCount];
    const std::string other = kPaths[(data[i + 1] / kPathCount) % kPathCount];
    if (data[i] % 8 != 5 && data[i] % 8 != 6) written.push_back(path);
    switch (data[i] % 8) {
      case 0:
        spec += "file " + path + " v" + std::to_string(data[i] >> 3) + "\n";
        mode_of[path] = "0644";
        break;
      case 1:
        spec += "dir " + path + " mode=07" + std::to_string(data[i] % 2 + 5) + "5\n";
        break;
      case 2:
        spec += "symlink " + path + " " + other + "\n";
        break;
      case 3: {
        // A link's header carries its target's mode, as producers write it (unpackers apply
        // the link header's mode to the shared inode).
        auto it = mode_of.find(other);
        const std::string mode = it == mode_of.end() ? "0644" : it->second;
        spec += "hardlink " + path + " " + other + " mode=" + mode + "\n";
        mode_of[path] = mode;
        break;
      }
      case 4:
        spec += "whiteout " + path + "\n";
        break;
      case 5: {
        // Producers write a directory's opaque marker before the layer's other entries under
        // it; after them, unpackers remove some of those entries and not others (whatever was
        // only created as a parent goes, with its subtree), which no real layer relies on.
        bool after_children = false;
        for (const std::string& w : written)
          after_children = after_children || w.rfind(path + "/", 0) == 0;
        if (!after_children) spec += "opaque " + path + "\n";
        break;
      }
      case 6:
        spec += "layer\n", ++layers;
        written.clear();
        break;
      default:
        spec += "file " + path + " x mode=0600\n";
        mode_of[path] = "0600";
        break;
    }
  }
  const size_t kept = data[0] % layers;
  dsq::test::Scenario s = dsq::test::squash_spec(spec, kept);
  if (!s.error.empty()) return 0;  // rejected input: fine
  for (const std::string& line : s.expected)
    if (line.rfind("APPLY ERROR", 0) == 0) return 0;  // not a valid image to begin with
  auto expected = s.expected, actual = s.actual;
  if (kept > 0) expected = without_link_identity(expected), actual = without_link_identity(actual);
  if (expected != actual) {
    std::fprintf(stderr, "squash differs from the layers applied one by one (kept %zu):\n%s\n",
                 kept, spec.c_str());
    for (const auto& l : s.expected) std::fprintf(stderr, "  expected %s\n", l.c_str());
    for (const auto& l : s.actual) std::fprintf(stderr, "  actual   %s\n", l.c_str());
    abort();
  }
  return 0;
}
