// The fork server's master process: see fork_master.h. It starts as a fresh, single-threaded
// program (exec'd), but its children are forked from it and its signal handlers interrupt it, so
// every child path and every handler uses only async-signal-safe calls (signal-safety(7)): no
// malloc, no locks, no C++ exceptions.
#include "fork_master.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <ctime>

#include "../accept_guard.h"
#include "../clock.h"
#include "../eintr.h"
#include "../process_hygiene.h"
#include "../reap.h"
#include "../server_session.h"

namespace ps {

namespace {

// Set once, in run_master(): the signal handlers' way to the state.
MasterState* the_master = nullptr;

// A child's exit status: how its connection ended.
constexpr int kExitEnd = 0;       // the client closed
constexpr int kExitError = 1;     // a read/write failed
constexpr int kExitOrphan = 2;    // the master was already gone
constexpr int kExitIdle = 3;      // idleTimeoutMs passed
constexpr int kExitLifetime = 4;  // maxConnectionMs passed
constexpr int kExitSlow = 5;      // the client sent less than minBytesPerSecond in a window

Counters& counters(MasterState& m) { return m.page->counters; }

int exit_status_for(DisconnectReason reason) {
  switch (reason) {
    case DisconnectReason::End:
      return kExitEnd;
    case DisconnectReason::Idle:
      return kExitIdle;
    case DisconnectReason::Lifetime:
      return kExitLifetime;
    case DisconnectReason::Slow:
      return kExitSlow;
    default:
      return kExitError;
  }
}

// The child's wait status says how its connection ended (run_child); a signal means the master
// ended it at close(), or it crashed. An exec'd program's exit status is its own: 0 is an end,
// anything else an error (the reap event carries the status itself).
DisconnectReason reason_for(int status, bool children_killed, bool exec) {
  if (WIFSIGNALED(status)) return children_killed ? DisconnectReason::Aborted : DisconnectReason::Crash;
  if (exec) return exec_disconnect_reason(status, children_killed);
  switch (WIFEXITED(status) ? WEXITSTATUS(status) : kExitError) {
    case kExitEnd:
      return DisconnectReason::End;
    case kExitIdle:
      return DisconnectReason::Idle;
    case kExitLifetime:
      return DisconnectReason::Lifetime;
    case kExitSlow:
      return DisconnectReason::Slow;
    default:
      return DisconnectReason::Error;
  }
}

// One finished child: tell JS how its connection ended and how it was reaped, then free its
// entry. The entry is freed last: if the master dies midway, Node still finds the connection in
// the table (ForkServer::reconcile), and its own record of the events already emitted tells it
// whether the disconnect was reported.
void record_reaped(MasterState& m, pid_t pid, int status) {
  m.events.trace(TraceCall::Waitpid, status, pid);
  ChildEntry* entry = nullptr;
  for (int i = 0; i < m.max_clients && entry == nullptr; ++i) {
    if (m.page->children[i].pid.load() == pid) entry = &m.page->children[i];
  }
  // Not in the table: an orphan of a program, handed to the master (subreaper, server_session.h)
  // and now collected. It was no connection: nothing to report, nothing to count.
  if (entry == nullptr && m.exec != nullptr) return;
  // A program killed by a signal (a crash, kill -9 from outside): what it started must not live
  // on holding its client's connection. Its group is SIGKILLed (the number stays its group's while
  // any member is alive). A program that exited leaves its background children to run, as inetd
  // does, until close() — whose own SIGTERM, then SIGKILL, reach them (escalate).
  if (m.exec != nullptr && WIFSIGNALED(status) && !m.children_killed) kill(-pid, SIGKILL);
  EventRecord disconnect{};
  disconnect.type = static_cast<uint8_t>(EventType::Disconnect);
  disconnect.pid = pid;
  if (entry != nullptr) {
    disconnect.id = entry->id;
    disconnect.bytesIn = entry->bytes.in.load();
    disconnect.bytesOut = entry->bytes.out.load();
    m.door.release(entry->door_ticket);  // its address no longer counts against maxPerSource
    entry->door_ticket = -1;
  }
  disconnect.code = static_cast<int32_t>(reason_for(status, m.children_killed, m.serve.handler == Handler::Exec));

  Counters& c = counters(m);
  c.active.fetch_sub(1);
  c.closed.fetch_add(1);
  c.reaped.fetch_add(1);
  if (entry == nullptr || entry->announced) m.events.emit(disconnect);

  EventRecord reap{};
  reap.type = static_cast<uint8_t>(EventType::Reap);
  reap.id = disconnect.id;
  reap.pid = pid;
  reap.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  reap.detail = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  m.events.emit(reap);
  if (entry != nullptr) entry->pid.store(0);
}

// Homework 1: reap every child that has exited. Loops because signals do not queue: one SIGCHLD
// may stand for several children. Returns false when there are no children left at all.
bool reap_children(MasterState& m) {
  for (;;) {
    int status = 0;
    pid_t pid = reap_any_child(&status, counters(m));  // waitpid(-1, WNOHANG), with the child's CPU time
    if (pid > 0) {
      record_reaped(m, pid, status);
      continue;
    }
    return !(pid < 0 && errno == ECHILD);
  }
}

void on_sigchld(int sig) {
  note_signal(sig);
  int saved = errno;
  if (the_master != nullptr) reap_children(*the_master);
  errno = saved;
}

// SIGTERM (stop) and SIGUSR1 (stop and end live connections). shutdown() of the listening
// socket wakes a blocked accept() (it fails with EINVAL), so no stop request can be missed
// between the flag check and the next accept().
void on_stop(int sig) {
  note_signal(sig);
  int saved = errno;
  if (the_master != nullptr) {
    the_master->stop_requested = 1;
    if (sig == SIGUSR1) the_master->abort_requested = 1;
    if (the_master->lfd >= 0) {
      shutdown(the_master->lfd, SHUT_RDWR);
      the_master->events.trace(TraceCall::Shutdown, the_master->lfd, 0);
    }
  }
  errno = saved;
}

// The parent-death signal: Node is gone (killed), nobody will close this server or read its
// events. Every process of its session goes with it — the exec'd programs' children too, which
// the kernel's own parent-death signal never reaches — then the master leaves.
void on_node_gone(int) {
  if (the_master != nullptr) kill_session_now(the_master->self, kNodeGoneKillMs);
  _exit(1);
}

void install_handler(int sig, void (*handler)(int), int flags) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigfillset(&sa.sa_mask);  // handlers never nest: each sees consistent state
  sa.sa_flags = flags;
  sigaction(sig, &sa, nullptr);
}

// The child: lecture point 5. Runs only async-signal-safe code and never returns.
[[noreturn]] void run_child(MasterState& m, int cfd, ChildEntry& entry) {
  // The master's handlers would act on the master's listener: not ours.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, nullptr);
  sigaction(SIGTERM, &dfl, nullptr);
  sigaction(SIGUSR1, &dfl, nullptr);
  sigaction(SIGHUP, &dfl, nullptr);
  close(m.lfd);  // the child closes lfd: it only talks to its one client
  m.events.trace(TraceCall::CloseLfd, m.lfd, 0);
  if (m.exec != nullptr) {
    // inetd's child: the connection becomes a program's stdin and stdout (exec_child.h). It leads
    // a process group of its own, as a shell's job does: a program that signals its group
    // (kill(0, …)) reaches only its own, and when it dies of a signal the master SIGKILLs that
    // group (record_reaped). Both sides call setpgid, as a shell does for a job, so the group
    // exists before either goes on. close() reaches it through the session (server_session.h).
    setpgid(0, 0);
    if (!die_with_parent(m.self)) _exit(kExitOrphan);
    exec_program(*m.exec, cfd, m.events, entry.id);
  }
  // Keep only the client, stdio and the event pipe (nothing else should be open; this makes sure).
  int keep[] = {0, 1, 2, cfd, m.events.write_fd};
  close_all_fds_except(keep, 5);
  if (!die_with_parent(m.self)) _exit(kExitOrphan);
  unblock_all_signals();
  // The event pipe's write end stays open (unused) until _exit: its EOF in Node then means that
  // every process of this server is gone.
  DisconnectReason reason = serve_connection(cfd, m.serve, counters(m), entry.bytes);
  if (reason == DisconnectReason::Crash) abort();  // lab hook: a real crash, reaped with SIGABRT
  close(cfd);
  m.events.trace(TraceCall::CloseConn, cfd, 0, 0, entry.id);
  // "The exit must be there": without it the child would return into the accept loop and fork
  // children of its own. _exit, not exit: no atexit handlers, no stdio flushing of the master's copy.
  int status = exit_status_for(reason);
  m.events.trace(TraceCall::ChildExit, -1, status, 0, entry.id);
  _exit(status);
}

ChildEntry* free_entry(MasterState& m) {
  for (int i = 0; i < m.max_clients; ++i) {
    if (m.page->children[i].pid.load() == 0) return &m.page->children[i];
  }
  return nullptr;
}

// `door_ticket`: the door's hold on the client's address (door.h), released when the child is
// reaped — or here, if the connection is refused after all.
void handle_connection(MasterState& m, int cfd, const sockaddr_storage& peer, uint32_t id, int32_t door_ticket) {
  Counters& c = counters(m);
  // Refuse when maxClients children are alive: accepted, closed at once, reported.
  if (c.active.load() >= static_cast<uint64_t>(m.max_clients)) {
    m.door.release(door_ticket);
    m.events.trace(TraceCall::SlotsFull, cfd, 0, 0, id);
    m.events.reject(peer, id, RejectReason::MaxClients, 0);
    close(cfd);  // after the Reject record (door.h: refused clients are heard in order)
    return;
  }
  if (m.exec != nullptr) {
    // The program's ucspi-tcp variables, formatted here: the child may not (no snprintf there).
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    getsockname(cfd, reinterpret_cast<sockaddr*>(&local), &len);
    set_tcp_vars(*m.exec, local, peer);
  }
  // Signals stay blocked from before fork() until the child is in the table, so the SIGCHLD
  // handler can never see a pid it does not know (a very short connection may end at once).
  sigset_t old;
  block_all_signals(&old);
  ChildEntry* entry = free_entry(m);
  if (entry == nullptr) {
    restore_signal_mask(&old);
    m.door.release(door_ticket);
    m.events.reject(peer, id, RejectReason::MaxClients, 0);
    close(cfd);
    return;
  }
  entry->id = id;
  entry->door_ticket = door_ticket;
  entry->bytes.in.store(0);
  entry->bytes.out.store(0);
  // The trace record is written after fork() returns (it needs the pid), but stamped with the time
  // of the call: the child may well have run, and even exited, before the parent resumes.
  uint64_t fork_ns = monotonic_ns();
  pid_t pid = fork_without_atfork_handlers();
  if (pid == 0) run_child(m, cfd, *entry);
  if (pid < 0) {
    int err = errno;
    entry->door_ticket = -1;
    restore_signal_mask(&old);
    m.door.release(door_ticket);
    m.events.reject(peer, id, RejectReason::NoProcess, err);
    close(cfd);
    return;
  }
  if (m.exec != nullptr) setpgid(pid, pid);  // see run_child (EACCES once it has exec'd: already done)
  entry->pid.store(pid);
  c.active.fetch_add(1);
  m.events.trace(TraceCall::Fork, cfd, pid, 0, id, -1, nullptr, fork_ns);
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Connection);
  rec.id = id;
  rec.pid = pid;
  set_peer(rec, peer);
  entry->announced = m.events.announce_connection(rec);
  restore_signal_mask(&old);
  close(cfd);  // the parent closes cfd: the child has its own copy
  m.events.trace(TraceCall::CloseCfd, cfd, 0, 0, id);
}

// Sends `sig` to every live child — with the exec handler to every process of the server's
// session and every orphan handed to the master (server_session.h): the programs, their process
// groups, whatever else they started, and what programs that have exited left behind. Each gets
// it once (a program's group is not signalled apart: its members would get it twice).
void signal_children(MasterState& m, int sig) {
  if (m.exec != nullptr) {
    signal_session(m.self, m.self, m.self, sig);
    return;
  }
  for (int i = 0; i < m.max_clients; ++i) {
    pid_t pid = m.page->children[i].pid.load();
    if (pid > 0) kill(pid, sig);
  }
}

// close()'s timeout has passed: end the connections still being served. A stopped child (SIGSTOP)
// keeps a SIGTERM pending until it is continued: SIGCONT follows, so it wakes up and dies of it.
void kill_children(MasterState& m) {
  m.children_killed = 1;
  m.force_kill_at = monotonic_ms() + kChildKillGraceMs;
  signal_children(m, SIGTERM);
  signal_children(m, SIGCONT);
}

// After the abort: SIGTERM+SIGCONT first, then, for a child that outlives the grace time (stopped
// again, traced…), SIGKILL, which nothing resists. With the exec handler the same happens, once
// no connection is left, to what the programs left behind (the master's children still there are
// orphans it adopted), and the SIGKILL is repeated for orphans handed over later. Returns how
// long to wait before the next check, in ms (-1: no deadline is pending).
int64_t escalate(MasterState& m) {
  const bool leftovers_only = m.exec != nullptr && counters(m).active.load() == 0;
  if ((m.abort_requested || leftovers_only) && !m.children_killed) kill_children(m);
  if (!m.children_killed) return -1;
  if (!m.children_forced) {
    int64_t left = m.force_kill_at - monotonic_ms();
    if (left > 0) return left;
    m.children_forced = 1;
  } else if (m.exec == nullptr) {
    return -1;
  }
  signal_children(m, SIGKILL);
  return m.exec != nullptr ? kSweepAgainMs : -1;
}

// whenFull 'wait' (room_gate.h): no accept() while max_clients children are alive, so the next
// client waits in the listen backlog. The SIGCHLD of a child that ended — or close()'s SIGTERM —
// ends the sigsuspend(), as it ends tcpserver's sig_pause() under -c.
void wait_for_room(MasterState& m) {
  if (m.when_full != WhenFull::Wait) return;
  sigset_t old;
  block_all_signals(&old);
  sigset_t wait_mask;
  sigemptyset(&wait_mask);
  while (!m.stop_requested && counters(m).active.load() >= static_cast<uint64_t>(m.max_clients)) {
    sigsuspend(&wait_mask);
  }
  restore_signal_mask(&old);
}

// Stop accepting, wait for the children, end them if asked to, and exit.
[[noreturn]] void drain_and_exit(MasterState& m) {
  sigset_t old;
  block_all_signals(&old);
  int lfd = m.lfd;
  m.lfd = -1;
  close(lfd);  // the port is free from here on
  m.events.trace(TraceCall::CloseLfd, lfd, 0);
  if (m.reap == ReapMode::None) {
    // Lab mode: nobody reaped, the children that ended are zombies. Collect them now (and end
    // the others on abort), polling: without a handler, SIGCHLD wakes nothing.
    restore_signal_mask(&old);
    while (reap_children(m)) {
      escalate(m);
      poll(nullptr, 0, 10);
    }
    _exit(0);
  }
  sigset_t wait_mask;
  sigemptyset(&wait_mask);
  while (reap_children(m)) {
    int64_t wait_ms = escalate(m);
    // Atomically unblock and wait (sigsuspend, with a timeout while a SIGKILL is due): a SIGCHLD
    // or SIGUSR1 that arrived since the check above is pending, so it is handled here, never lost.
    timespec timeout{wait_ms / 1000, (wait_ms % 1000) * 1000000};
    ppoll(nullptr, 0, wait_ms < 0 ? nullptr : &timeout, &wait_mask);
  }
  _exit(0);
}

}  // namespace

void begin_master_process(MasterState& m) {
  reset_signal_dispositions();
  redirect_stdio_to_devnull();
  int stderr_copy = m.exec != nullptr ? m.exec->stderr_fd : -1;  // exec, stderr 'inherit'
  int keep[] = {0, 1, 2, m.lfd, m.events.write_fd, m.reserve_fd, stderr_copy};
  close_all_fds_except(keep, 7);
  // SIGHUP, handled (on_node_gone), not SIGKILL: the master must take its session with it.
  if (!die_with_parent(m.node_pid, SIGHUP)) _exit(1);
  m.self = getpid();
}

[[noreturn]] void run_master(MasterState& m) {
  begin_master_process(m);  // before anything else
  the_master = &m;
  if (m.exec != nullptr) adopt_orphans();
  // Homework 1: reap children from SIGCHLD. No SA_RESTART, as in the lecture: the accept() it
  // interrupts fails with EINTR, which retry_eintr() retries and counts.
  // Lab switches: `restart` adds SA_RESTART (the kernel restarts accept: eintrRetries stays 0);
  // reap 'none' installs nothing, so finished children stay zombies. (SIG_IGN would not do:
  // ignoring SIGCHLD explicitly makes the kernel reap them itself.)
  if (m.reap == ReapMode::Sigchld) install_handler(SIGCHLD, on_sigchld, SA_NOCLDSTOP | (m.restart ? SA_RESTART : 0));
  install_handler(SIGTERM, on_stop, 0);
  install_handler(SIGUSR1, on_stop, 0);
  install_handler(SIGHUP, on_node_gone, 0);
  // A server must not die because Node (the event pipe's reader) went away mid-write.
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, nullptr);
  unblock_all_signals();
  EventRecord listening{};
  listening.type = static_cast<uint8_t>(EventType::Listening);
  listening.pid = m.self;
  m.events.emit(listening);

  Counters& c = counters(m);
  for (;;) {
    wait_for_room(m);
    sockaddr_storage peer{};
    int cfd = accept_client(m.lfd, peer, c, m.events);
    if (m.stop_requested) {
      if (cfd >= 0) close(cfd);
      break;
    }
    if (cfd < 0) {
      int err = errno;
      if (handle_accept_failure(err, m.lfd, m.reserve_fd, c, m.events) == AcceptVerdict::Retry) continue;
      EventRecord rec{};
      rec.type = static_cast<uint8_t>(EventType::Error);
      rec.code = err;
      m.events.emit(rec);
      break;
    }
    uint32_t id = static_cast<uint32_t>(c.accepted.fetch_add(1) + 1);
    m.events.trace(TraceCall::Accept, m.lfd, cfd, 0, id, -1, &peer);
    // The door, before any fork (door.h). The ticket is kept with the child and released at reap
    // (the SIGCHLD handler may release others meanwhile: the door is lock-free).
    int32_t ticket = -1;
    if (!pass_door(m.door, cfd, peer, id, m.events, ticket)) continue;
    handle_connection(m, cfd, peer, id, ticket);
  }
  drain_and_exit(m);
}

}  // namespace ps
