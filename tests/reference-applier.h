// A reference model of a layer applier (what Docker's and containerd's unpackers do to a root
// filesystem), kept in memory: the oracle of the end-to-end tests. Deliberately written the
// naive way, entry by entry, independent of the engine's path map.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dsq::ref {

struct Inode {
  char type = 'f';  // f file, d dir, l symlink, o other
  uint32_t mode = 0;
  int64_t uid = 0, gid = 0, mtime = 0;
  uint64_t size = 0;
  uint64_t content = 0;  // XXH3 of the data
  std::string symlink;
  std::map<std::string, std::string> xattrs;
};

class Tree {
 public:
  Tree();
  // Applies one layer tar; returns "" or a description of why it cannot be applied.
  std::string apply(std::string_view tar);
  // One line per path: type, mode, owner, size, content hash, link target, mtime, xattrs, and
  // the first path sharing its inode (hard links).
  std::vector<std::string> listing() const;

 private:
  void remove_subtree(const std::string& path);
  // Creates the missing parents of `path`; false when one exists but is not a directory.
  bool ensure_parents(const std::string& path);
  std::map<std::string, std::shared_ptr<Inode>> nodes_;  // "" is the root
};

}  // namespace dsq::ref
