#include "process_hygiene.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <climits>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace ps {

void block_all_signals(sigset_t* old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, old);
}

void restore_signal_mask(const sigset_t* old) { pthread_sigmask(SIG_SETMASK, old, nullptr); }

void unblock_all_signals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

pid_t fork_without_atfork_handlers() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  return _Fork();
#else
  return fork();
#endif
}

void reset_signal_dispositions() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < 32; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);
  }
}

namespace {

// close_range(2) closes a whole range in one syscall (Linux 5.9+). Older kernels: one by one,
// up to the descriptor limit.
void close_range_or_loop(unsigned first, unsigned last) {
  if (first > last) return;
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
  rlimit lim{};
  unsigned cap = 65536;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < UINT_MAX) {
    cap = static_cast<unsigned>(lim.rlim_cur);
  }
  for (unsigned fd = first; fd <= last && fd < cap; ++fd) close(static_cast<int>(fd));
}

}  // namespace

void close_all_fds_except(const int* keep, int n) {
  // Sort the (few) descriptors to keep, without allocating: insertion sort on a stack copy.
  constexpr int kMostKept = 12;  // the callers keep at most 9 (a pool member's)
  int sorted[kMostKept];
  int count = 0;
  for (int i = 0; i < n && count < kMostKept; ++i) {
    if (keep[i] < 0) continue;
    int j = count++;
    while (j > 0 && sorted[j - 1] > keep[i]) {
      sorted[j] = sorted[j - 1];
      --j;
    }
    sorted[j] = keep[i];
  }
  unsigned next = 0;
  for (int i = 0; i < count; ++i) {
    unsigned fd = static_cast<unsigned>(sorted[i]);
    if (fd > next) close_range_or_loop(next, fd - 1);
    next = fd + 1;
  }
  close_range_or_loop(next, UINT_MAX);
}

void redirect_stdio_to_devnull() {
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd < 0) return;
  for (int fd = 0; fd <= 2; ++fd) {
    if (null_fd != fd) dup2(null_fd, fd);
  }
  if (null_fd > 2) close(null_fd);
}

bool die_with_parent(pid_t parent, int sig) {
  if (prctl(PR_SET_PDEATHSIG, sig) != 0) return false;
  return getppid() == parent;
}

}  // namespace ps
