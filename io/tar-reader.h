// Walks the entries of a tar held in memory, reporting for each one where its bytes lie: the
// header chain (extension records included) starts at `offset`, the data and padding end at
// `end`. Knowing the exact byte range is what lets the engine copy surviving entries
// byte-for-byte without re-encoding them.
//
// Headers are decoded in place by a scanner that touches only the header bytes (libarchive's
// reader costs ~1.7 us per entry, as it converts every name to wide characters, which
// dominated indexing). It reads what Docker's reader (Go's archive/tar) reads: ustar, GNU, v7
// and star headers, pax path/linkpath/size records, GNU long names, global pax headers (which
// it skips). It refuses, naming the exact header, both damage (bad checksums, malformed
// numbers and pax records, truncation) and what readers disagree on, because the engine copies
// entries verbatim and Docker must see the entry the index saw: repeated or conflicting
// long-name headers, data on links and directories, regular files named like directories,
// sparse and vendor entry types. libarchive's reader remains as an oracle for the tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "io/mapped-file.h"
#include "io/status.h"

struct archive;
struct archive_entry;

namespace dsq {

enum class TarType : uint8_t { kFile, kDir, kSymlink, kHardlink, kOther };

struct TarEntry {
  uint64_t offset = 0;    // first byte of the header chain, from the start of the tar
  uint64_t end = 0;       // one past the last padding byte (known once the entry is finished)
  uint64_t size = 0;      // data size from the header (0 for links and directories)
  std::string_view path;  // raw name as stored; valid until the next call to next()
  std::string_view link;  // hard link or symlink target; valid until next()
  TarType type = TarType::kOther;
};

class TarReader {
 public:
  enum class Mode { kFast, kLibarchiveOnly };
  // `name` prefixes every error message ("in.tar:blobs/sha256/ab.."). kLibarchiveOnly reads
  // with libarchive instead of the scanner (tests compare the two).
  TarReader(Bytes tar, std::string name, Mode mode = Mode::kFast);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // Reads the next entry's header. Sets `done` at the end of the archive. The previous entry's
  // `end` is the new entry's `offset` (or end_offset() once done).
  Status next(TarEntry& entry, bool& done);
  // Where the end-of-archive marker starts; valid once next() reported done.
  uint64_t end_offset() const { return end_offset_; }

 private:
  Status scan(TarEntry& entry, bool& done);
  Status header_name(const char* header, uint64_t pos, std::string& out) const;
  Status next_libarchive(TarEntry& entry, bool& done);
  Status fail(std::string_view entry_path, uint64_t offset, std::string_view what) const;
  Status fail_after(uint64_t offset, std::string_view what) const;

  Bytes tar_;
  std::string name_;
  uint64_t pos_ = 0;       // next header (scanner)
  archive* ar_ = nullptr;  // libarchive's reader, in kLibarchiveOnly mode
  uint64_t end_offset_ = 0;
  std::string path_buf_, link_buf_;
  std::string prev_path_;
  uint64_t last_offset_ = 0;  // the last entry's header offset (libarchive mode)
};

}  // namespace dsq
