// libarchive reads headers (ustar, pax, GNU long names, base-256 numbers) so this file only
// translates positions and errors. libarchive's header position is taken before extension
// headers are consumed, so [offset, next offset) is the entry's whole byte range.
#include "io/tar-reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

namespace dsq {

TarReader::TarReader(Bytes tar, std::string name) : tar_(tar), name_(std::move(name)) {
  ar_ = archive_read_new();
  archive_read_support_format_tar(ar_);
  archive_read_open_memory(ar_, tar_.data(), tar_.size());
}

TarReader::~TarReader() { archive_read_free(ar_); }

Status TarReader::fail(std::string_view entry_path, uint64_t offset, std::string_view what) const {
  std::string msg = name_;
  if (!entry_path.empty()) msg += ":" + std::string(entry_path);
  msg += "@" + std::to_string(offset) + ": " + std::string(what);
  return Status::error(msg);
}

Status TarReader::next(TarEntry& entry, bool& done) {
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(ar_, &e);
  auto pos = static_cast<uint64_t>(archive_read_header_position(ar_));
  done = false;
  if (rc == ARCHIVE_EOF) {
    done = true;
    end_offset_ = pos;
    return {};
  }
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {  // ARCHIVE_RETRY is a damaged header too
    // A truncated archive or a corrupt header: name the entry before it, which is where a
    // reader of the archive will look.
    std::string what = archive_error_string(ar_) ? archive_error_string(ar_) : "unreadable tar header";
    if (pos >= tar_.size()) what = "truncated archive (" + what + ")";
    return fail(prev_path_.empty() ? "" : "after " + prev_path_, pos, what);
  }
  const char* path = archive_entry_pathname(e);
  entry = TarEntry{};
  entry.offset = pos;
  entry.raw = e;
  entry.path = path ? path : "";
  prev_path_ = std::string(entry.path);
  if (archive_entry_sparse_count(e) > 0)
    return fail(entry.path, pos, "sparse tar entries are not supported");
  if (const char* hl = archive_entry_hardlink(e)) {
    entry.type = TarType::kHardlink;
    entry.link = hl;
    return {};
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      entry.type = TarType::kFile;
      entry.size = static_cast<uint64_t>(archive_entry_size(e));
      break;
    case AE_IFDIR:
      entry.type = TarType::kDir;
      break;
    case AE_IFLNK:
      entry.type = TarType::kSymlink;
      entry.link = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
      break;
    default:
      entry.type = TarType::kOther;
      break;
  }
  if (pos + entry.size > tar_.size())
    return fail(entry.path, pos, "truncated archive: entry data runs past the end");
  return {};
}

}  // namespace dsq
