// The scanner decodes a header chain in place and stops at the first thing it does not decode;
// from there libarchive takes over for the rest of the archive (it is walked up to the same
// entry first, so both agree on every offset). libarchive's header position is taken before
// extension headers are consumed, so in either mode [offset, next offset) is the entry's whole
// byte range.
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

// A numeric header field: octal digits (leading spaces, trailing NUL/space) or GNU base-256
// (high bit of the first byte set, big-endian, two's complement).
Number number(const char* p, size_t n, uint64_t& out) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] & 0x80) {
    if (u[0] & 0x40) return Number::kNegative;
    uint64_t v = u[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) return Number::kBad;
      v = v << 8 | u[i];
    }
    out = v;
    return Number::kOk;
  }
  size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i, ++digits) {
    if (v >> 60) return Number::kBad;
    v = v * 8 + static_cast<uint64_t>(p[i] - '0');
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != '\0') return Number::kBad;
  out = v;
  return digits > 0 ? Number::kOk : Number::kBad;
}

// The stored checksum matches the header's bytes summed as unsigned or (as some old tars
// did) as signed chars; the checksum field itself counts as spaces.
bool checksum_ok(const unsigned char* h) {
  uint64_t stored = 0;
  if (number(reinterpret_cast<const char*>(h) + 148, 8, stored) != Number::kOk) return false;
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
    if (space == std::string_view::npos || space == 0 || space > 20) return false;
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
  if (mode == Mode::kLibarchiveOnly) switch_to_libarchive();
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

TarReader::Scan TarReader::scan(TarEntry& entry) {
  const auto* base = reinterpret_cast<const unsigned char*>(tar_.data());
  const uint64_t total = tar_.size();
  uint64_t pos = pos_;
  // Each kind of extension header at most once per entry, and a long name from only one of
  // them: readers disagree on which of two wins, so such a chain could smuggle a name past
  // a scanner that picks the other one.
  bool seen_pax = false, seen_long_name = false, seen_long_link = false;
  PaxRecords pax;
  path_buf_.clear();
  link_buf_.clear();
  for (;;) {
    const uint64_t left = total - pos;
    if (left < kBlock && all_zero(base + pos, left)) {  // the end, or no end marker at all
      if (pos != pos_)
        return scan_fail_after(pos, "invalid tar header: extension header without an entry");
      end_offset_ = pos;
      return Scan::kEnd;
    }
    if (left < kBlock) return scan_fail_after(pos, "truncated archive: a header runs past the end");
    const unsigned char* h = base + pos;
    if (h[0] == 0 && all_zero(h, kBlock)) {
      if (pos != pos_)
        return scan_fail_after(pos, "invalid tar header: extension header without an entry");
      end_offset_ = pos;
      return Scan::kEnd;
    }
    if (!checksum_ok(h))
      return scan_fail_after(pos, pos == 0 ? "not a tar archive (no valid header at the start)"
                                           : "invalid tar header: bad checksum");
    const char* hc = reinterpret_cast<const char*>(h);
    const char type = hc[156];
    uint64_t size = 0;
    switch (number(hc + 124, 12, size)) {
      case Number::kOk:
        break;
      case Number::kBad:
        return scan_fail_after(pos, "invalid tar header: size field is not a number");
      case Number::kNegative:
        return scan_fail_after(pos, "invalid tar header: negative size");
    }
    const uint64_t data = pos + kBlock;
    if (type == 'x' || type == 'L' || type == 'K') {
      if (size > total - data || padded(size) > total - data)
        return scan_fail_after(pos, "truncated archive: an extension header runs past the end");
      std::string_view payload(hc + kBlock, size);
      bool& seen = type == 'x' ? seen_pax : type == 'L' ? seen_long_name : seen_long_link;
      if (seen)
        return scan_fail_after(
            pos, "invalid tar header: two extension headers of one kind for one entry");
      seen = true;
      if (type == 'x') {
        if (!parse_pax(payload, pax))
          return scan_fail_after(pos, "invalid tar header: malformed pax record");
        if (pax.path.find('\0') != std::string::npos || pax.link.find('\0') != std::string::npos)
          return scan_fail_after(pos, "invalid tar header: NUL byte in a pax path");
      } else {
        (type == 'L' ? path_buf_ : link_buf_).assign(field(payload.data(), payload.size()));
      }
      if ((seen_long_name && pax.has_path) || (seen_long_link && pax.has_link))
        return scan_fail_after(pos,
                               "invalid tar header: both a pax and a GNU long name for one entry");
      pos = data + padded(size);
      continue;
    }
    if (pax.has_path) path_buf_ = pax.path;
    if (pax.has_link) link_buf_ = pax.link;
    if (!seen_long_name && !pax.has_path) {
      std::string_view name = field(hc, 100);
      bool posix = std::memcmp(hc + 257, "ustar\0", 6) == 0;
      std::string_view prefix = posix ? field(hc + 345, 155) : std::string_view{};
      if (!prefix.empty())
        path_buf_.assign(prefix).append("/").append(name);
      else
        path_buf_.assign(name);
    }
    if (!seen_long_link && !pax.has_link) link_buf_.assign(field(hc + 157, 100));
    if (pax.sparse || type == 'S')
      return scan_fail(pax.sparse_name.empty() ? path_buf_ : pax.sparse_name, pos_,
                       "sparse tar entries are not supported");
    if (pax.has_size) size = pax.size;
    entry = TarEntry{};
    entry.offset = pos_;
    entry.path = path_buf_;
    switch (type) {
      case '0':
      case '\0':
      case '7':
        entry.type = !path_buf_.empty() && path_buf_.back() == '/' ? TarType::kDir : TarType::kFile;
        entry.size = entry.type == TarType::kFile ? size : 0;
        if (entry.type == TarType::kDir && size != 0) return Scan::kUnsupported;
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
        return Scan::kUnsupported;  // global headers and vendor types
    }
    if (entry.type != TarType::kFile && size != 0) return Scan::kUnsupported;
    if (size > total - data)
      return scan_fail(path_buf_, pos_, "truncated archive: entry data runs past the end");
    if (padded(size) > total - data)
      return scan_fail(path_buf_, pos_, "truncated archive: the entry's padding runs past the end");
    pos_ = data + padded(size);
    // Headers sit kilobytes apart, beyond the hardware prefetcher's reach: ask for the next
    // one now, so that its cache misses overlap the caller's work on this entry.
    if (pos_ + kBlock <= total)
      for (size_t line = 0; line < kBlock; line += 64) __builtin_prefetch(base + pos_ + line);
    return Scan::kEntry;
  }
}

TarReader::Scan TarReader::scan_fail(std::string_view entry_path, uint64_t offset,
                                     std::string_view what) {
  scan_error_ = fail(entry_path, offset, what);
  return Scan::kError;
}

// A damaged header has no name of its own: the message names the entry before it.
TarReader::Scan TarReader::scan_fail_after(uint64_t offset, std::string_view what) {
  return scan_fail(prev_path_.empty() ? "" : "after " + prev_path_, offset, what);
}

void TarReader::switch_to_libarchive() {
  ar_ = archive_read_new();
  archive_read_support_format_tar(ar_);
  archive_read_open_memory(ar_, tar_.data(), tar_.size());
  // Walk up to the entry the scanner stopped at (both readers agree on every entry before it);
  // the header read there is handed out by the next call to next_libarchive().
  if (pos_ == 0) return;
  for (;;) {
    pending_rc_ = archive_read_next_header(ar_, &pending_);
    if (pending_rc_ != ARCHIVE_OK && pending_rc_ != ARCHIVE_WARN) break;
    if (static_cast<uint64_t>(archive_read_header_position(ar_)) >= pos_) break;
  }
  has_pending_ = true;
}

Status TarReader::next(TarEntry& entry, bool& done) {
  done = false;
  if (ar_ == nullptr) {
    switch (scan(entry)) {
      case Scan::kEntry:
        prev_path_.assign(entry.path);
        return {};
      case Scan::kEnd:
        done = true;
        return {};
      case Scan::kError:
        return scan_error_;
      case Scan::kUnsupported:
        switch_to_libarchive();
        break;
    }
  }
  return next_libarchive(entry, done);
}

Status TarReader::next_libarchive(TarEntry& entry, bool& done) {
  archive_entry* e = nullptr;
  int rc;
  if (has_pending_) {
    has_pending_ = false;
    rc = pending_rc_;
    e = pending_;
  } else {
    rc = archive_read_next_header(ar_, &e);
  }
  // After a failure libarchive reports no position: name the last entry it did read (or where
  // the walk switched to it) instead.
  int64_t at = archive_read_header_position(ar_);
  uint64_t pos = at >= 0 ? static_cast<uint64_t>(at) : std::max(last_offset_, pos_);
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
