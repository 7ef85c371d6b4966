// Reaping a child with what it cost: the master's waitpid(-1, WNOHANG) as wait4(), whose rusage
// (user + system time of the child and of the children it reaped itself) is added to the page's
// reapedCpuUs. A process that has been reaped is gone from /proc, and what /proc keeps of it (the
// parent's cutime/cstime) is in 10 ms clock ticks; this sum is in microseconds, so the benchmark
// can count the CPU of every connection's child (fork) or exec'd member (prefork) exactly.
//
// Async-signal-safe: the fork master calls it from its SIGCHLD handler. wait4() is not on POSIX's
// list only because it is not POSIX; glibc's waitpid() is the same system call
// (wait4(pid, status, options, NULL)), a plain syscall wrapper with no lock. The sum is a
// lock-free atomic in the shared page.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <atomic>
#include <cstdint>

#include "eintr.h"
#include "shared_page.h"

namespace ps {

// waitpid(-1, status, WNOHANG), EINTR retried and counted; a child reaped adds its CPU time.
inline pid_t reap_any_child(int* status, Counters& counters) {
  rusage usage{};
  pid_t pid = retry_eintr(counters.eintrRetries, [&] { return wait4(-1, status, WNOHANG, &usage); });
  if (pid > 0) {
    const auto us = [](const timeval& t) {
      return static_cast<uint64_t>(t.tv_sec) * 1000000u + static_cast<uint64_t>(t.tv_usec);
    };
    counters.reapedCpuUs.fetch_add(us(usage.ru_utime) + us(usage.ru_stime), std::memory_order_relaxed);
  }
  return pid;
}

}  // namespace ps
