// The scanner walks header chains in place; an entry's offset is where its chain starts
// (extension and global headers included), so [offset, next offset) is the entry's whole byte
// range in either reader.
#include "io/tar-reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace dsq {

namespace {

constexpr size_t kBlock = 512;

uint64_t padded(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// A NUL-terminated field of at most `n` bytes.
std::string_view field(const char* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != '\0') ++len;
  return {p, len};
}

enum class Number { kOk, kBad, kNegative };

// A numeric header field as Go's archive/tar (Docker's reader) reads it: octal digits between
// optional leading and trailing spaces and NULs (nothing at all is 0), or, where `base256`,
// GNU base-256 (high bit of the first byte set, big-endian, two's complement).
Number number(const char* p, size_t n, uint64_t& out, bool base256 = true) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (base256 && (u[0] & 0x80)) {
    if (u[0] & 0x40) return Number::kNegative;
    uint64_t v = u[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) return Number::kBad;
      v = v << 8 | u[i];
    }
    out = v;
    return Number::kOk;
  }
  size_t i = 0, end = n;
  while (i < end && (p[i] == ' ' || p[i] == '\0')) ++i;
  while (end > i && (p[end - 1] == ' ' || p[end - 1] == '\0')) --end;
  uint64_t v = 0;
  for (; i < end; ++i) {
    if (p[i] < '0' || p[i] > '7' || (v >> 60)) return Number::kBad;
    v = v * 8 + static_cast<uint64_t>(p[i] - '0');
  }
  out = v;
  return Number::kOk;
}

// The stored checksum matches the header's bytes summed as unsigned or (as some old tars
// did) as signed chars; the checksum field itself counts as spaces.
bool checksum_ok(const unsigned char* h) {
  uint64_t stored = 0;
  if (number(reinterpret_cast<const char*>(h) + 148, 8, stored, false) != Number::kOk) return false;
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += h[i];  // vectorised
  for (size_t i = 148; i < 156; ++i) sum = sum - h[i] + ' ';
  if (sum == stored) return true;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i)
    signed_sum += i >= 148 && i < 156 ? ' ' : static_cast<signed char>(h[i]);
  return static_cast<uint64_t>(signed_sum) == stored;
}

bool all_zero(const unsigned char* h, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (h[i] != 0) return false;
  return true;
}

// What one pax extended header says about the entry that follows it.
struct PaxRecords {
  std::string path, link, sparse_name;
  bool has_path = false, has_link = false, has_size = false, sparse = false;
  uint64_t size = 0;
};

// Parses the records of a pax extended header; false if one is malformed.
bool parse_pax(std::string_view data, PaxRecords& out) {
  while (!data.empty()) {
    size_t space = data.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 19) return false;
    uint64_t len = 0;
    for (size_t i = 0; i < space; ++i) {
      if (data[i] < '0' || data[i] > '9') return false;
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (len <= space + 1 || len > data.size() || data[len - 1] != '\n') return false;
    std::string_view record = data.substr(space + 1, len - space - 2);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
    if (key == "path") {
      out.path.assign(value);
      out.has_path = true;
    } else if (key == "linkpath") {
      out.link.assign(value);
      out.has_link = true;
    } else if (key == "size") {
      uint64_t v = 0;
      if (value.empty() || value.size() > 19) return false;
      for (char c : value) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      out.size = v;
      out.has_size = true;
    } else if (key.starts_with("GNU.sparse")) {
      out.sparse = true;
      if (key == "GNU.sparse.name") out.sparse_name.assign(value);
    }
    data.remove_prefix(len);
  }
  return true;
}

}  // namespace

TarReader::TarReader(Bytes tar, std::string name, Mode mode) : tar_(tar), name_(std::move(name)) {
  if (mode == Mode::kLibarchiveOnly) {
    ar_ = archive_read_new();
    archive_read_support_format_tar(ar_);
    archive_read_open_memory(ar_, tar_.data(), tar_.size());
  }
}

TarReader::~TarReader() {
  if (ar_ != nullptr) archive_read_free(ar_);
}

Status TarReader::fail(std::string_view entry_path, uint64_t offset, std::string_view what) const {
  std::string msg = name_;
  if (!entry_path.empty()) msg += ":" + std::string(entry_path);
  msg += "@" + std::to_string(offset) + ": " + std::string(what);
  return Status::error(msg);
}

Status TarReader::scan(TarEntry& entry, bool& done) {
  constexpr uint64_t kMaxExtension = 1 << 20;  // Go's and libarchive's limit too
  const auto* base = reinterpret_cast<const unsigned char*>(tar_.data());
  const uint64_t total = tar_.size();
  uint64_t pos = pos_;
  // Each kind of extension header at most once per entry, and a name from only one of them:
  // readers disagree on which of two wins, so such a chain could smuggle a name past a
  // scanner that picks the other one.
  bool seen_pax = false, seen_long_name = false, seen_long_link = false;
  PaxRecords pax;
  path_buf_.clear();
  link_buf_.clear();
  auto pending = [&] { return seen_pax || seen_long_name || seen_long_link; };
  for (;;) {
    const uint64_t left = total - pos;
    const unsigned char* h = base + pos;
    if ((left < kBlock && all_zero(h, left)) ||
        (left >= kBlock && h[0] == 0 && all_zero(h, kBlock))) {
      // The end-of-archive marker, or the end of the bytes without one.
      if (pending())
        return fail_after(pos, "invalid tar header: extension header without an entry");
      end_offset_ = pos_;  // global headers just before the end belong to no entry
      done = true;
      return {};
    }
    if (left < kBlock) return fail_after(pos, "truncated archive: a header runs past the end");
    if (!checksum_ok(h))
      return fail_after(pos, pos == 0 ? "not a tar archive (no valid header at the start)"
                                      : "invalid tar header: bad checksum");
    const char* hc = reinterpret_cast<const char*>(h);
    const char type = hc[156];
    uint64_t size = 0;
    switch (number(hc + 124, 12, size)) {
      case Number::kOk:
        break;
      case Number::kBad:
        return fail_after(pos, "invalid tar header: size field is not a number");
      case Number::kNegative:
        return fail_after(pos, "invalid tar header: negative size");
    }
    const uint64_t data = pos + kBlock;
    if (type == 'x' || type == 'L' || type == 'K' || type == 'g') {
      if (size > kMaxExtension)
        return fail_after(pos, "invalid tar header: extension header larger than 1 MiB");
      if (padded(size) > total - data)
        return fail_after(pos, "truncated archive: an extension header runs past the end");
      std::string_view payload(hc + kBlock, size);
      if (type == 'g') {
        // A global pax header: Docker ignores it, Go hands it out as an entry of its own, so
        // it may only start a chain. It becomes part of the next entry's bytes.
        if (pending()) return fail_after(pos, "invalid tar header: a global header inside a chain");
        PaxRecords global;
        if (!parse_pax(payload, global))
          return fail_after(pos, "invalid tar header: malformed pax record");
        pos = data + padded(size);
        continue;
      }
      bool& seen = type == 'x' ? seen_pax : type == 'L' ? seen_long_name : seen_long_link;
      if (seen)
        return fail_after(pos,
                          "invalid tar header: two extension headers of one kind for one entry");
      seen = true;
      if (type == 'x') {
        if (!parse_pax(payload, pax))
          return fail_after(pos, "invalid tar header: malformed pax record");
        if (pax.path.find('\0') != std::string::npos || pax.link.find('\0') != std::string::npos)
          return fail_after(pos, "invalid tar header: NUL byte in a pax path");
      } else {
        std::string_view text = field(payload.data(), payload.size());
        (type == 'L' ? path_buf_ : link_buf_).assign(text);
      }
      // Go and libarchive ignore an empty name there, Python's tarfile takes it.
      if ((type == 'x' &&
           ((pax.has_path && pax.path.empty()) || (pax.has_link && pax.link.empty()))) ||
          (type != 'x' && (type == 'L' ? path_buf_ : link_buf_).empty()))
        return fail_after(pos, "invalid tar header: an empty name in an extension header");
      if ((seen_long_name && pax.has_path) || (seen_long_link && pax.has_link))
        return fail_after(pos, "invalid tar header: both a pax and a GNU long name for one entry");
      pos = data + padded(size);
      continue;
    }
    if (pax.has_path) path_buf_ = pax.path;
    if (pax.has_link) link_buf_ = pax.link;
    if (!seen_long_name && !pax.has_path) {
      DSQ_TRY(header_name(hc, pos, path_buf_));
    }
    if (!seen_long_link && !pax.has_link) link_buf_.assign(field(hc + 157, 100));
    if (pax.sparse || type == 'S')
      return fail(pax.sparse_name.empty() ? path_buf_ : pax.sparse_name, pos_,
                  "sparse tar entries are not supported");
    if (pax.has_size) size = pax.size;
    entry = TarEntry{};
    entry.offset = pos_;
    entry.path = path_buf_;
    const bool slash = !path_buf_.empty() && path_buf_.back() == '/';
    switch (type) {
      case '\0':  // old tars wrote directories as plain files named with a slash
        entry.type = slash ? TarType::kDir : TarType::kFile;
        break;
      case '0':
      case '7':
        // Go's reader (Docker's) makes this a file, libarchive a directory: refuse it.
        if (slash)
          return fail(path_buf_, pos_, "invalid tar header: a regular file named like a directory");
        entry.type = TarType::kFile;
        break;
      case '1':
        entry.type = TarType::kHardlink;
        entry.link = link_buf_;
        break;
      case '2':
        entry.type = TarType::kSymlink;
        entry.link = link_buf_;
        break;
      case '5':
        entry.type = TarType::kDir;
        break;
      case '3':
      case '4':
      case '6':
        entry.type = TarType::kOther;
        break;
      default:
        return fail(path_buf_, pos_, "unsupported tar entry type '" + std::string(1, type) + "'");
    }
    // Go reads no data for any other type and would take the bytes for headers; libarchive
    // would skip them. Either way the entry is ambiguous.
    if (entry.type != TarType::kFile && size != 0)
      return fail(path_buf_, pos_, "invalid tar header: a link, directory or device with data");
    entry.size = size;
    if (size > total - data)
      return fail(path_buf_, pos_, "truncated archive: entry data runs past the end");
    if (padded(size) > total - data)
      return fail(path_buf_, pos_, "truncated archive: the entry's padding runs past the end");
    pos_ = data + padded(size);
    // Headers sit kilobytes apart, beyond the hardware prefetcher's reach: ask for the next
    // one now, so that its cache misses overlap the caller's work on this entry.
    if (pos_ + kBlock <= total)
      for (size_t line = 0; line < kBlock; line += 64) __builtin_prefetch(base + pos_ + line);
    return {};
  }
}

// The name of a header without extension records: ustar and pax headers join the prefix field
// (131 bytes in star's variant, which keeps times after it); GNU headers have none, but Go
// reads one from a header whose time fields do not parse (what old Go versions wrote), so
// such a header is refused rather than named two ways.
Status TarReader::header_name(const char* hc, uint64_t pos, std::string& out) const {
  std::string_view name = field(hc, 100);
  std::string_view prefix;
  if (std::memcmp(hc + 257, "ustar\0", 6) == 0) {
    bool star = std::memcmp(hc + 508, "tar\0", 4) == 0;
    prefix = field(hc + 345, star ? 131 : 155);
  } else if (std::memcmp(hc + 257, "ustar  \0", 8) == 0) {
    uint64_t t = 0;
    for (size_t at : {345, 357})
      if (hc[at] != '\0' && number(hc + at, 12, t) != Number::kOk)
        return fail(std::string(name), pos,
                    "invalid tar header: GNU time fields that do not parse");
  }
  if (!prefix.empty())
    out.assign(prefix).append("/").append(name);
  else
    out.assign(name);
  return {};
}

// A damaged header has no name of its own: the message names the entry before it.
Status TarReader::fail_after(uint64_t offset, std::string_view what) const {
  return fail(prev_path_.empty() ? "" : "after " + prev_path_, offset, what);
}

Status TarReader::next(TarEntry& entry, bool& done) {
  done = false;
  Status st = ar_ != nullptr ? next_libarchive(entry, done) : scan(entry, done);
  if (st.ok() && !done) prev_path_.assign(entry.path);
  return st;
}

Status TarReader::next_libarchive(TarEntry& entry, bool& done) {
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(ar_, &e);
  // After a failure libarchive reports no position: name the last entry it did read instead.
  int64_t at = archive_read_header_position(ar_);
  uint64_t pos = at >= 0 ? static_cast<uint64_t>(at) : last_offset_;
  done = false;
  if (rc == ARCHIVE_EOF) {
    done = true;
    end_offset_ = pos;
    return {};
  }
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {  // ARCHIVE_RETRY is a damaged header too
    // A truncated archive or a corrupt header: name the entry before it, which is where a
    // reader of the archive will look.
    std::string what =
        archive_error_string(ar_) ? archive_error_string(ar_) : "unreadable tar header";
    if (pos >= tar_.size()) what = "truncated archive (" + what + ")";
    return fail(prev_path_.empty() ? "" : "after " + prev_path_, pos, what);
  }
  const char* path = archive_entry_pathname(e);
  entry = TarEntry{};
  entry.offset = pos;
  last_offset_ = pos;
  entry.path = path ? path : "";
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
