// The children of a fork master that died (kill -9). They die with it (PR_SET_PDEATHSIG), but they
// are no longer its children: the kernel hands them to init, or to the nearest subreaper, which
// reaps them. Node cannot waitpid() another process's orphans; it can watch them through pidfds
// until whoever their parent now is has reaped them, so that when close() settles none is left,
// not even as a zombie.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <vector>

namespace ps {

// Waits until every process in `pids` has been reaped, at most `timeout_ms`. When one of them is
// Node's own child now (Node is PID 1 of a container, or a subreaper), it is reaped here, by pidfd
// (waitid(P_PIDFD)): only that process, never a child of libuv's. Returns how many were still
// there when the time was up (0: all gone).
//
// The pids come from the shared page's child table, read after the master was reaped: a pid freed
// since by init and already reused would need the kernel to cycle through pid_max in the meantime.
int await_reaped(const std::vector<pid_t>& pids, int64_t timeout_ms);

}  // namespace ps
