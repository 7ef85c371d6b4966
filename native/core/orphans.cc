#include "orphans.h"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>

#include "clock.h"
#include "eintr.h"
#include "unique_fd.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace ps {

namespace {

// How often a process that has exited is checked for having been reaped: reaping sends no
// notification to anyone but the parent.
constexpr int kPollMs = 10;

// True once the process behind `pidfd` has been reaped — by us if it is our child (then its wait
// status is collected here), else by its parent. A zombie still takes a signal 0; a reaped
// process gives ESRCH.
bool reaped(int pidfd) {
  siginfo_t info{};
  if (retry_eintr([&] { return waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED | WNOHANG); }) == 0 &&
      info.si_pid != 0) {
    return true;
  }
  return syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0 && errno == ESRCH;
}

}  // namespace

int await_reaped(const std::vector<pid_t>& pids, int64_t timeout_ms) {
  std::vector<UniqueFd> left;
  for (pid_t pid : pids) {
    UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (fd.valid()) left.push_back(std::move(fd));  // else ESRCH: reaped already
  }
  const int64_t deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    for (size_t i = 0; i < left.size();) {
      if (reaped(left[i].get())) {
        left[i] = std::move(left.back());
        left.pop_back();
      } else {
        ++i;
      }
    }
    if (left.empty() || monotonic_ms() >= deadline) return static_cast<int>(left.size());
    poll(nullptr, 0, kPollMs);
  }
}

}  // namespace ps
