#include "measure.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <ctime>

#include "../core/clock.h"
#include "../core/eintr.h"

namespace ps {

namespace {

int64_t ns_of(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }
int64_t ns_of(const timeval& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_usec * 1000; }

// This process's CPU time, and its reaped children's (RUSAGE_CHILDREN: microseconds).
int64_t self_and_children_cpu_ns() {
  timespec self{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &self);
  rusage children{};
  getrusage(RUSAGE_CHILDREN, &children);
  return ns_of(self) + ns_of(children.ru_utime) + ns_of(children.ru_stime);
}

}  // namespace

int64_t process_cpu_ns(pid_t pid) {
  clockid_t clock{};
  if (clock_getcpuclockid(pid, &clock) != 0) return -1;
  timespec t{};
  if (clock_gettime(clock, &t) != 0) return -1;
  return ns_of(t);
}

ForkCost measure_fork_cost(int iterations) {
  ForkCost cost;
  const int64_t cpu0 = self_and_children_cpu_ns();
  const uint64_t wall0 = monotonic_ns();
  for (int i = 0; i < iterations; ++i) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) return ForkCost{};
    int status = 0;
    retry_eintr([&] { return waitpid(pid, &status, 0); });
  }
  if (iterations <= 0) return cost;
  cost.iterations = iterations;
  cost.cpu_ns = (self_and_children_cpu_ns() - cpu0) / iterations;
  cost.wall_ns = static_cast<int64_t>(monotonic_ns() - wall0) / iterations;
  return cost;
}

}  // namespace ps
