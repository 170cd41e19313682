// MappedFile: mmap(2) of a whole input file. Reading in place is what lets the engine skip the
// bytes of entries that do not survive: they are never faulted in. MAP_PRIVATE|PROT_READ, so a
// file that shrinks while mapped raises SIGBUS, which cli/ turns into a clear message.
#include "io/mapped-file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "io/temp-files.h"

namespace dsq {

namespace {
constexpr uintptr_t kPage = 4096;
}

MappedFile::~MappedFile() { reset(); }

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    name_ = std::move(other.name_);
  }
  return *this;
}

void MappedFile::reset() {
  if (data_ != nullptr) {
    forget_mapping(data_);
    munmap(const_cast<std::byte*>(data_), size_);
  }
  data_ = nullptr;
  size_ = 0;
}

Status MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": cannot open: " + errno_text(errno));
  return open_fd(fd, path);
}

Status MappedFile::open_fd(int fd, const std::string& name) {
  reset();
  name_ = name;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Status::error(name + ": cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Status::error(name + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      size_ = 0;
      return Status::error(name + ": cannot map: " + errno_text(err));
    }
    data_ = static_cast<const std::byte*>(p);
    remember_mapping(name_, data_, size_);
  }
  close(fd);
  return {};
}

void release_pages(const std::byte* begin, const std::byte* end) {
  auto b = (reinterpret_cast<uintptr_t>(begin) + kPage - 1) & ~(kPage - 1);
  auto e = reinterpret_cast<uintptr_t>(end) & ~(kPage - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace dsq
