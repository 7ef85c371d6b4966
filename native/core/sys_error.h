// A failed syscall, reported the way Node reports its own: errno plus the syscall's name.
// The N-API glue turns it into an Error with `code` (EADDRINUSE…), `errno` and `syscall`.
#pragma once

namespace ps {

struct SysError {
  int err = 0;  // errno value, 0 = success
  const char* syscall = nullptr;

  explicit operator bool() const { return err != 0; }
};

}  // namespace ps
