#include "server_session.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>

#include "clock.h"
#include "eintr.h"
#include "unique_fd.h"

namespace ps {

namespace {

// What signal_session needs of /proc/<pid>/stat (proc(5): fields 3, 4 and 6).
struct StatFields {
  char state = '?';
  pid_t ppid = 0;
  pid_t session = 0;
};

// A decimal number from `p` on, to the first non-digit; `p` is left there.
long read_number(const char*& p, const char* end) {
  long v = 0;
  bool negative = p < end && *p == '-';
  if (negative) ++p;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
  return negative ? -v : v;
}

// "/proc/<pid>/stat" into `path` (at least 32 bytes), without snprintf.
void stat_path(pid_t pid, char* path) {
  const char prefix[] = "/proc/";
  int n = 0;
  for (const char* c = prefix; *c != '\0'; ++c) path[n++] = *c;
  char digits[12];
  int d = 0;
  unsigned v = static_cast<unsigned>(pid);
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (d > 0) path[n++] = digits[--d];
  const char suffix[] = "/stat";
  for (const char* c = suffix; *c != '\0'; ++c) path[n++] = *c;
  path[n] = '\0';
}

bool read_stat(pid_t pid, StatFields& out) {
  char path[32];
  stat_path(pid, path);
  UniqueFd fd(retry_eintr([&] { return open(path, O_RDONLY | O_CLOEXEC); }));
  if (!fd.valid()) return false;
  // The fields needed come right after the command name; a longer line is cut, not needed.
  char buf[1024];
  ssize_t n = retry_eintr([&] { return read(fd.get(), buf, sizeof buf); });
  if (n <= 0) return false;
  const char* end = buf + n;
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const char* p = end;
  while (p > buf && p[-1] != ')') --p;
  if (p == buf || end - p < 2) return false;
  ++p;  // the space
  out.state = *p++;
  if (p < end) ++p;
  out.ppid = static_cast<pid_t>(read_number(p, end));
  if (p < end) ++p;
  read_number(p, end);  // pgrp
  if (p < end) ++p;
  out.session = static_cast<pid_t>(read_number(p, end));
  return true;
}

bool belongs(const StatFields& st, pid_t sid, pid_t adopter) {
  if (st.state == 'Z' || st.state == 'X') return false;  // dead already: its parent reaps it
  return (sid > 0 && st.session == sid) || (adopter > 0 && st.ppid == adopter);
}

// Signals `pid` if, named by a pidfd, it still belongs. False if it was not signalled.
bool signal_if_still_ours(pid_t pid, pid_t sid, pid_t adopter, int sig) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    // No pidfd_open (before Linux 5.3): kill() by number, as every tool without pidfds does.
    return errno == ENOSYS && kill(pid, sig) == 0;
  }
  // The pidfd names the process that had this pid when it was opened. Checked again now: if that
  // one has gone and the number is someone else's, the /proc entry may say anything, but the
  // signal below goes to the pidfd's process, which is gone (ESRCH).
  StatFields st;
  if (!read_stat(pid, st) || !belongs(st, sid, adopter)) return false;
  return syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) == 0;
}

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

}  // namespace

int signal_session(pid_t sid, pid_t adopter, pid_t self, int sig, pid_t* found, int cap) {
  UniqueFd dir(retry_eintr([] { return open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC); }));
  if (!dir.valid()) return 0;
  int count = 0;
  alignas(LinuxDirent64) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dir.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      const auto* entry = reinterpret_cast<const LinuxDirent64*>(buf + at);
      at += entry->d_reclen;
      const char* name = entry->d_name;
      if (*name < '1' || *name > '9') continue;  // not a process
      const char* end = name;
      while (*end != '\0') ++end;
      const char* p = name;
      pid_t pid = static_cast<pid_t>(read_number(p, end));
      if (p != end || pid == self) continue;
      StatFields st;
      if (!read_stat(pid, st) || !belongs(st, sid, adopter)) continue;
      if (!signal_if_still_ours(pid, sid, adopter, sig)) continue;
      if (found != nullptr && count < cap) found[count] = pid;
      ++count;
    }
  }
  return count;
}

void adopt_orphans() { prctl(PR_SET_CHILD_SUBREAPER, 1); }

void kill_session_now(pid_t self, int64_t timeout_ms) {
  const int64_t deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    int signalled = signal_session(self, self, self, SIGKILL);
    int status = 0;
    while (waitpid(-1, &status, WNOHANG) > 0) {
    }
    if (signalled == 0 || monotonic_ms() >= deadline) return;
    // A killed program's children are handed to this process a moment later: look again.
    const timespec pause{0, 2 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
}

}  // namespace ps
