// What the benchmark measures natively (no N-API): a process's CPU time to the nanosecond, and the
// machine's fork cost.
//
// CPU time: /proc/<pid>/stat's utime and stime are clock ticks (10 ms), truncated per process and
// per field, so a pool of 15 members that each ran 4 ms reads as 0. A process's CPU-time clock
// (clock_getcpuclockid) is the scheduler's own sum in nanoseconds, of every thread of the process,
// those that have exited included (a thread-per-connection server's workers are gone by the time
// anyone looks; /proc/<pid>/task/<tid>/schedstat shows only the live ones). What a process's
// reaped children used is not in it: the server's master counts that (reap.h).
#pragma once

#include <sys/types.h>
#include <cstdint>

namespace ps {

// The CPU time (ns, user + system) of process `pid` so far, all its threads, the exited ones
// included. Linux lets any process read another's CPU-time clock. -1 when it does not exist.
int64_t process_cpu_ns(pid_t pid);

// The cost of a process per connection without the connection: `iterations` times fork(), the
// child _exit(0)s at once, the parent waitpid()s for it.
struct ForkCost {
  int iterations = 0;
  int64_t cpu_ns = 0;   // per iteration: the CPU time of the parent and of the children
  int64_t wall_ns = 0;  // per iteration: the elapsed time
};
// Measured in the calling process: its size is what fork() copies (the page tables of every
// private mapping), so it is run in the fork model's master program, which forks for every
// connection (posix-servers-master fork-cost N). errno set and iterations 0 when fork() fails.
ForkCost measure_fork_cost(int iterations);

}  // namespace ps
