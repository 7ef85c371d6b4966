// The fork server's master: the lecture's multi-process server (points 5–8 and homework 1), as a
// program of its own. Node's side (fork_server.cc) forks and execs it the way node-pty starts
// its shell, handing it the listening socket, the event pipe, the reserve descriptor and the
// shared page at fixed descriptor numbers; master_main.cc reads its options and calls
// run_master() — or, for the pool models, run_prefork_master() / run_reuseport_master()
// (pool_master.h), which share this state and these descriptors.
//
//   master process            loop { cfd = accept(); fork(); parent closes cfd }, and a SIGCHLD
//                             handler without SA_RESTART that reaps children with waitpid():
//                             the accept() it interrupts fails with EINTR and is retried.
//   child process (per conn)  closes lfd, serves the connection with the handler (echo until
//                             EOF…), closes cfd, _exit()s — or, with the exec handler, becomes
//                             the program (exec_child.h).
//
// Why a program of its own and not a fork of Node: fork() copies the parent's page tables, and
// every child of a Node-sized master paid for Node's ~50 MB (BENCHMARKS.md measured 0.45× the C
// reference's connection rate). The exec'd master is a few hundred kB, like the lecture's server,
// and is linked -z now (CMakeLists.txt): what it has bound at start, no child binds again.
#pragma once

#include <sys/types.h>
#include <csignal>
#include <cstdint>

#include "../connection.h"
#include "../door.h"
#include "../event_pipe.h"
#include "../exec_child.h"
#include "../server.h"
#include "../shared_page.h"

namespace ps {

// close(): children (and exec'd programs, fork and prefork) still alive this long after their
// SIGTERM are SIGKILLed. A child of ours dies of SIGTERM at once; one that does not has been
// stopped again, or is traced — or is a program that handles SIGTERM.
constexpr int64_t kChildKillGraceMs = 1000;

// Where Node's side puts the master's descriptors across execve().
constexpr int kMasterListenFd = 3;
constexpr int kMasterEventFd = 4;
constexpr int kMasterReserveFd = 5;
constexpr int kMasterPageFd = 6;  // the shared page's memfd: mapped, then closed
// Only with the exec handler (exec_child.h):
constexpr int kMasterExecFd = 7;    // the exec block: read at start, then closed
constexpr int kMasterStderrFd = 8;  // stderr 'inherit': Node's standard error, for the programs

// Everything the master process and its signal handlers use. One master runs exactly one server,
// so its handlers reach the state through a pointer set only inside a master process.
struct MasterState {
  Model model = Model::Fork;
  int lfd = -1;
  pid_t node_pid = 0;
  pid_t self = 0;
  EventPipe events;
  SharedPage* page = nullptr;
  int reserve_fd = -1;  // given up to refuse a connection when descriptors run out (accept_guard.h)
  int max_clients = 0;
  WhenFull when_full = WhenFull::Refuse;  // 'wait': no accept() while max_clients are live (room_gate.h)
  int room_fd = -1;                       // reuseport, 'wait': the pool's eventfd, written when room is made
  ServePolicy serve;
  ExecPlan* exec = nullptr;  // the exec handler's program (serve.handler == Exec)
  Door door;                 // the rules right after accept() (door.h), in the shared page
  ReapMode reap = ReapMode::Sigchld;
  bool restart = false;
  int workers = 1;                            // prefork, reuseport: members of the pool
  AcceptLock accept_lock = AcceptLock::None;  // prefork
  int backlog = 128;                          // reuseport: each worker's own listen() backlog
  volatile sig_atomic_t stop_requested = 0;
  volatile sig_atomic_t abort_requested = 0;
  volatile sig_atomic_t children_killed = 0;  // SIGTERM (and SIGCONT) sent to every child
  volatile sig_atomic_t children_forced = 0;  // then SIGKILL, to those still alive at force_kill_at
  int64_t force_kill_at = 0;                  // monotonic ms
};

// The first steps of every master program (fork's and the pools'), before its own: nothing
// inherited from Node across execve() may act in it — its ignored signals (SIGPIPE…), its
// blocked mask, its stdio, a descriptor it did not mark close-on-exec — and it dies with Node.
// Exits (1) when it cannot ask for that death.
void begin_master_process(MasterState& m);

// Accepts and forks until Node sends SIGTERM (stop) or SIGUSR1 (stop and end live connections),
// then waits for every child and exits. Never returns.
[[noreturn]] void run_master(MasterState& m);

}  // namespace ps
