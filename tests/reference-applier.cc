#include "tests/reference-applier.h"

#include <archive.h>
#include <archive_entry.h>
#include <xxhash.h>

#include <set>

namespace dsq::ref {

namespace {

std::string normalise(const std::string& raw) {
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string::npos) j = raw.size();
    std::string c = raw.substr(i, j - i);
    if (!c.empty() && c != ".") out += (out.empty() ? "" : "/") + c;
    i = j + 1;
  }
  return out;
}

std::string parent(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

std::string base(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

bool under(const std::string& p, const std::string& dir) {
  return dir.empty()
             ? !p.empty()
             : p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/';
}

}  // namespace

Tree::Tree() {
  auto root = std::make_shared<Inode>();
  root->type = 'd';
  root->mode = 0755;
  nodes_[""] = root;
}

void Tree::remove_subtree(const std::string& path) {
  auto it = nodes_.find(path);
  if (it != nodes_.end())
    it = nodes_.erase(it);
  else
    it = nodes_.lower_bound(path + "/");
  while (it != nodes_.end() && under(it->first, path)) it = nodes_.erase(it);
}

bool Tree::ensure_parents(const std::string& path) {
  if (path.empty()) return true;
  std::string p = parent(path);
  if (auto it = nodes_.find(p); it != nodes_.end()) return it->second->type == 'd';
  if (!ensure_parents(p)) return false;
  auto dir = std::make_shared<Inode>();
  dir->type = 'd';
  dir->mode = 0755;
  nodes_[p] = dir;
  return true;
}

std::string Tree::apply(std::string_view tar) {
  archive* r = archive_read_new();
  archive_read_support_format_tar(r);
  archive_read_open_memory(r, tar.data(), tar.size());
  archive_entry* e;
  std::set<std::string> created;  // paths this layer wrote (opaque markers spare them)
  std::string error;
  int rc;
  while ((rc = archive_read_next_header(r, &e)) == ARCHIVE_OK) {
    std::string path = normalise(archive_entry_pathname(e));
    std::string name = base(path);
    if (name.rfind(".wh.", 0) == 0) {
      // Docker and containerd create a marker's parent directories like any entry's.
      if (!ensure_parents(path)) {
        error = path + ": a parent is not a directory";
        break;
      }
      std::string dir = parent(path);
      if (name == ".wh..wh..opq") {
        for (auto it = nodes_.lower_bound(dir.empty() ? "" : dir + "/");
             it != nodes_.end() && under(it->first, dir);) {
          if (!created.count(it->first))
            it = nodes_.erase(it);
          else
            ++it;
        }
      } else if (name.rfind(".wh..wh.", 0) != 0) {
        remove_subtree(dir.empty() ? name.substr(4) : dir + "/" + name.substr(4));
      }
      continue;
    }
    created.insert(path);
    auto inode = std::make_shared<Inode>();
    inode->mode = archive_entry_perm(e);
    inode->uid = archive_entry_uid(e);
    inode->gid = archive_entry_gid(e);
    inode->mtime = archive_entry_mtime(e);
    archive_entry_xattr_reset(e);
    const char* xn;
    const void* xv;
    size_t xs;
    while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK)
      inode->xattrs[xn] = std::string(static_cast<const char*>(xv), xs);
    if (const char* hl = archive_entry_hardlink(e)) {
      std::string target = normalise(hl);
      auto t = nodes_.find(target);
      if (t == nodes_.end()) {
        error = path + ": hard link target " + target + " does not exist";
        break;
      }
      if (t->second->type == 'd') {  // link(2) refuses directories: the unpack fails
        error = path + ": hard link to the directory " + target;
        break;
      }
      std::shared_ptr<Inode> shared = t->second;
      if (shared->type != 'l') {  // Docker gives the shared inode the link header's attributes
        shared->mode = inode->mode;
        shared->uid = inode->uid;
        shared->gid = inode->gid;
        shared->mtime = inode->mtime;
      }
      remove_subtree(path);
      if (!ensure_parents(path)) {
        error = path + ": a parent is not a directory";
        break;
      }
      nodes_[path] = shared;
      continue;
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        inode->type = 'd';
        break;
      case AE_IFLNK:
        inode->type = 'l';
        inode->symlink = archive_entry_symlink(e);
        break;
      case AE_IFREG:
        inode->type = 'f';
        break;
      default:
        inode->type = 'o';
        break;
    }
    if (inode->type == 'f') {
      XXH3_state_t* h = XXH3_createState();
      XXH3_64bits_reset(h);
      const void* buf;
      size_t n;
      la_int64_t off;
      while (archive_read_data_block(r, &buf, &n, &off) == ARCHIVE_OK) {
        XXH3_64bits_update(h, buf, n);
        inode->size += n;
      }
      inode->content = XXH3_64bits_digest(h);
      XXH3_freeState(h);
    }
    auto existing = nodes_.find(path);
    if (existing != nodes_.end() && existing->second->type == 'd' && inode->type == 'd') {
      *existing->second = *inode;  // directory over directory: attributes only
      continue;
    }
    remove_subtree(path);
    if (!ensure_parents(path)) {  // Docker and containerd fail the layer (ENOTDIR)
      error = path + ": a parent is not a directory";
      break;
    }
    nodes_[path] = inode;
  }
  if (error.empty() && rc != ARCHIVE_EOF && rc != ARCHIVE_OK)
    error = archive_error_string(r) ? archive_error_string(r) : "bad tar";
  archive_read_free(r);
  return error;
}

std::vector<std::string> Tree::listing() const {
  std::map<const Inode*, std::string> first_name;
  for (const auto& [path, inode] : nodes_)
    if (inode->type != 'd') first_name.try_emplace(inode.get(), path);
  std::vector<std::string> out;
  for (const auto& [path, n] : nodes_) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%c %04o %lld:%lld size=%llu hash=%016llx mtime=%lld", n->type,
                  n->mode, static_cast<long long>(n->uid), static_cast<long long>(n->gid),
                  static_cast<unsigned long long>(n->size),
                  static_cast<unsigned long long>(n->content), static_cast<long long>(n->mtime));
    std::string line = "/" + path + " " + buf;
    if (n->type == 'l') line += " -> " + n->symlink;
    for (const auto& [k, v] : n->xattrs) line += " xattr:" + k + "=" + v;
    if (n->type != 'd' && first_name.at(n.get()) != path)
      line += " link=/" + first_name.at(n.get());
    out.push_back(line);
  }
  return out;
}

}  // namespace dsq::ref
