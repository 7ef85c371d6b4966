// RAII for file descriptors. Every descriptor the servers own lives in one of these, so an early
// return on a failed syscall can never leak an fd (the "nothing leaks" rule: tests count /proc/self/fd).
#pragma once

#include <unistd.h>

namespace ps {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Hands the descriptor to a new owner (for example Node, for the event pipe's read end).
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // close() is async-signal-safe, so reset() may run in a forked child too. close() is never
  // retried on EINTR: on Linux the descriptor is gone even when close reports EINTR.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace ps
