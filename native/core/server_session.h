// Every process a process-model server started, wherever it went: the server's session.
//
// The master program (fork, prefork, reuseport) starts in a session of its own (Node's copy calls
// setsid() before it execs the master: fork_server.cc), so every process it starts, and every
// process those start, is in the session whose id is the master's pid — an exec'd program's
// children too, which its own process group reaches only while they stay in it, and which
// PR_SET_PDEATHSIG cannot reach (fork() clears it: `sh -c 'cat; true'`'s cat would outlive the
// master, holding the client's connection). The session is the server's reach:
//
//   close()           the master signals every process of its session but itself (SIGTERM, SIGCONT,
//                     then SIGKILL after the grace time), the programs' background children included,
//                     and those of programs that have already exited;
//   the master dies   Node (which waits for the master anyway) SIGKILLs what is left of the session;
//   Node dies         the master learns it from its parent-death signal (SIGHUP, which it handles,
//                     not SIGKILL, which it could not) and SIGKILLs its session before it exits.
//
// The master is also a child subreaper (PR_SET_CHILD_SUBREAPER, with the exec handler): an orphan
// of a program is handed to the master, not to init. The master then reaps it at once (no zombie
// waits for init's next round), and a process that left the session (setsid()) is still the
// master's own child once orphaned, so close() reaches it too. What nothing here reaches: a
// process that left the session while the master itself was killed (kill -9 of the master: Node
// can only find the session), and one that left the session and whose parent is still alive at the
// master's end (a cgroup would reach both: ARCHITECTURE.md says why it is not used).
//
// Async-signal-safe throughout (getdents64, open, read, pidfd_open, pidfd_send_signal; no
// allocation): the master calls it from a signal handler.
#pragma once

#include <sys/types.h>
#include <cstdint>

namespace ps {

// After close()'s SIGKILL: how soon the master sweeps its session again, for the orphans handed
// over since (a killed program's children).
constexpr int64_t kSweepAgainMs = 10;
// How long the master, when Node is gone, keeps killing what its session holds before it leaves.
constexpr int64_t kNodeGoneKillMs = 2000;

// Sends `sig` to every live process (zombies are skipped) of session `sid`, and to every child of
// `adopter` (0: none) — except `self` (0: none). The first `cap` of them go into `found` (nullptr:
// none). Returns how many were signalled. A process is named by a pidfd opened before its
// /proc entry is checked, so a pid that is freed and reused meanwhile is never signalled.
int signal_session(pid_t sid, pid_t adopter, pid_t self, int sig, pid_t* found = nullptr, int cap = 0);

// The master: orphans of the processes it starts become its children (PR_SET_CHILD_SUBREAPER).
void adopt_orphans();

// The master, when Node is gone (its parent-death signal): SIGKILL to every process of its
// session and every child of its own, again as orphans are handed over, until none is left or
// `timeout_ms` has passed; its children are reaped meanwhile. Nobody reads the books any more.
void kill_session_now(pid_t self, int64_t timeout_ms);

}  // namespace ps
