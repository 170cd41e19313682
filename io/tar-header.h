// Encoding of the few tar headers this tool writes itself (materialised hard links, whiteout
// markers, parent directories, the entries of the outer image archive), through libarchive's
// pax writer so that long names, xattrs and large values are encoded the standard way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "io/mapped-file.h"
#include "io/status.h"

struct archive_entry;

namespace dsq {

struct EntryDeleter {
  void operator()(archive_entry* e) const;
};
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

// Header blocks (pax extension records included) for `entry`; the caller appends the data and
// pads it to 512 bytes.
std::string encode_tar_header(archive_entry* entry);

// A simple header: regular file or directory with the given attributes.
EntryPtr make_entry(std::string_view path, bool directory, uint64_t size, int64_t mtime,
                    uint32_t mode);

// Re-reads the entry whose header chain starts at `offset` in `tar` (for attributes such as
// xattrs, owner and mtime of an entry that must be re-encoded under another name or type).
Status read_entry_at(Bytes tar, uint64_t offset, const std::string& name, EntryPtr& out);

// Zero bytes needed after `size` data bytes to reach the next 512-byte block.
inline uint64_t tar_padding(uint64_t size) { return (512 - size % 512) % 512; }
inline uint64_t tar_padded(uint64_t size) { return size + tar_padding(size); }

}  // namespace dsq
