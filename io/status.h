// Status: the error type that crosses every boundary in this project. No exceptions leave io/;
// library error codes are turned into one line "where: what went wrong" at the io/ boundary.
#pragma once

#include <cstring>
#include <string>
#include <utility>

namespace dsq {

// The text of an errno value. Not strerror: its buffer is shared, and layers fail on worker
// threads.
inline std::string errno_text(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);  // the GNU variant: returns the text
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  // `exit_code` is what the process exits with when this error ends the run: 1 for failures,
  // 2 for usage errors and "nothing to squash".
  static Status error(std::string message, int exit_code = 1) {
    return Status(std::move(message), exit_code);
  }
  bool ok() const { return exit_code_ == 0; }
  const std::string& message() const { return message_; }
  int exit_code() const { return exit_code_; }

 private:
  Status(std::string message, int exit_code)
      : message_(std::move(message)), exit_code_(exit_code) {}
  std::string message_;
  int exit_code_ = 0;
};

// Propagate a failed Status to the caller.
#define DSQ_TRY(expr)                          \
  do {                                         \
    ::dsq::Status dsq_status_ = (expr);        \
    if (!dsq_status_.ok()) return dsq_status_; \
  } while (0)

}  // namespace dsq
