// A read-only private mapping of a whole file, unmapped on destruction. Layers inside an archive
// are zero-copy slices of it; ranges that have been consumed are dropped from the resident set
// with madvise(MADV_DONTNEED) so that mapped input pages do not accumulate in RSS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "io/status.h"

namespace dsq {

using Bytes = std::span<const std::byte>;

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  // Maps `path` (or an already open descriptor, which is then owned).
  Status open(const std::string& path);
  Status open_fd(int fd, const std::string& name);

  Bytes bytes() const { return {data_, size_}; }
  const std::string& name() const { return name_; }
  bool empty() const { return size_ == 0; }

 private:
  void reset();
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
};

// Drops the whole pages inside [begin, end) from the resident set. Only for read-only file
// mappings: they are faulted in again from the page cache, where anonymous memory would read
// back as zeros.
void release_pages(const std::byte* begin, const std::byte* end);

}  // namespace dsq
