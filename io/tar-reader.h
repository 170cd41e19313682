// Walks the entries of a tar held in memory with libarchive, reporting for each one where its
// bytes lie: the header chain (extension records included) starts at `offset`, the data and
// padding end at `end`. Knowing the exact byte range is what lets the engine copy surviving
// entries byte-for-byte without re-encoding them.
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
  uint64_t offset = 0;     // first byte of the header chain, from the start of the tar
  uint64_t end = 0;        // one past the last padding byte (known once the entry is finished)
  uint64_t size = 0;       // data size from the header (0 for links and directories)
  std::string_view path;   // raw name as stored; valid until the next call to next()
  std::string_view link;   // hard link or symlink target; valid until next()
  TarType type = TarType::kOther;
  archive_entry* raw = nullptr;  // libarchive's view, for callers needing more attributes
};

class TarReader {
 public:
  // `name` prefixes every error message ("in.tar:blobs/sha256/ab..").
  TarReader(Bytes tar, std::string name);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // Reads the next entry's header. Sets `done` at the end of the archive. The previous entry's
  // `end` is the new entry's `offset` (or end_offset() once done).
  Status next(TarEntry& entry, bool& done);
  // Where the end-of-archive marker starts; valid once next() reported done.
  uint64_t end_offset() const { return end_offset_; }

 private:
  Status fail(std::string_view entry_path, uint64_t offset, std::string_view what) const;
  Bytes tar_;
  std::string name_;
  archive* ar_ = nullptr;
  uint64_t end_offset_ = 0;
  std::string prev_path_;
};

}  // namespace dsq
