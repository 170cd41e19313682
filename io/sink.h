// Where output bytes go: a file descriptor (archive file, spool) or the body of a Docker load
// request. Writers see one interface, so an archive can be streamed to the daemon as it is made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/status.h"
#include "io/temp-files.h"

namespace dsq {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(const void* data, size_t size) = 0;
};

class FdSink final : public Sink {
 public:
  FdSink(int fd, std::string where) : fd_(fd), where_(std::move(where)) {}
  Status write(const void* data, size_t size) override {
    return write_all(fd_, data, size, where_);
  }
  int fd() const { return fd_; }
  const std::string& where() const { return where_; }

 private:
  int fd_;
  std::string where_;
};

}  // namespace dsq
