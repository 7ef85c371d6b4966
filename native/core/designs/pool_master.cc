// The pool models' master and what their members share: see pool_master.h.
#include "pool_master.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "../clock.h"
#include "../eintr.h"
#include "../process_hygiene.h"
#include "../reap.h"
#include "../server_session.h"

namespace ps {

namespace {

// Set once, in run_pool_master(): the handlers' way to the flags. The handlers only run inside
// ppoll() (every signal is blocked elsewhere), so flags are all they need to set.
MasterState* the_pool_master = nullptr;
volatile sig_atomic_t child_exited = 0;

void on_sigchld(int sig) {
  note_signal(sig);
  child_exited = 1;
}

// Tests only (POSIX_SERVERS_TEST_FINISH_DELAY_MS, read when the pool starts): a connection's end
// pauses this long halfway — its entry freed, not yet counted nor reported — so that a test can
// make close()'s abort land there (test/pools.test.ts).
int test_finish_delay_ms = 0;

// The parent-death signal: Node is gone (killed). The session goes with the master
// (server_session.h): the programs' children too, which no parent-death signal reaches.
void on_node_gone(int) {
  if (the_pool_master != nullptr) kill_session_now(the_pool_master->self, kNodeGoneKillMs);
  _exit(1);
}

void on_stop(int sig) {
  note_signal(sig);
  if (the_pool_master == nullptr) return;
  the_pool_master->stop_requested = 1;
  if (sig == SIGUSR1) the_pool_master->abort_requested = 1;
}

void install_handler(int sig, void (*handler)(int), int flags) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigfillset(&sa.sa_mask);
  sa.sa_flags = flags;
  sigaction(sig, &sa, nullptr);
}

void emit_error(MasterState& m, TraceCall call, int err) {
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Error);
  rec.code = err;
  rec.detail = static_cast<int32_t>(call);
  m.events.emit(rec);
}

// The new member, between fork() and its loop: nothing of the master's may act in it.
[[noreturn]] void member_main(Pool& pool, PoolDesign& design, int index, int ctl) {
  MasterState& m = pool.m;
  // Signals are all blocked (the master's mask): no handler of the master's can run here before
  // these are reset. The design unblocks what it needs.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, nullptr);
  sigaction(SIGTERM, &dfl, nullptr);
  sigaction(SIGUSR1, &dfl, nullptr);
  sigaction(SIGHUP, &dfl, nullptr);
  // The other members' control sockets, the lock file of another design…: only its own stay.
  // With the exec handler and stderr 'inherit', Node's standard error too (for the program).
  int keep[9] = {0, 1, 2, m.events.write_fd, ctl, m.exec != nullptr ? m.exec->stderr_fd : -1};
  int n = 6 + design.member_fds(m, keep + 6);
  close_all_fds_except(keep, n);
  if (!die_with_parent(m.self)) _exit(kMemberExitOrphan);
  // The master's end is non-blocking; the member's end blocks (a pass member waits in recvmsg).
  int flags = fcntl(ctl, F_GETFL);
  if (flags >= 0) fcntl(ctl, F_SETFL, flags & ~O_NONBLOCK);
  // The shared page's entries now, not one fault per ring page on the connections to come.
  prefault_shared_page(m.page);
  design.run_member(m, index, ctl);
  _exit(kMemberExitFatal);  // not reached: run_member never returns
}

// Forks member i with its control socket. Returns false with errno set.
bool spawn(Pool& pool, PoolDesign& design, int i) {
  MasterState& m = pool.m;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return false;
  // Member i's books start closed: the member killed before it may have left them held.
  m.page->pool.books[i].store(kBooksClosed);
  uint64_t fork_ns = monotonic_ns();  // the member may trace before the master resumes
  pid_t pid = fork_without_atfork_handlers();
  if (pid == 0) {
    close(sv[0]);
    member_main(pool, design, i, sv[1]);
  }
  int err = errno;
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    errno = err;
    return false;
  }
  PoolMember member;  // (an aggregate initialiser would put `false` in `listener`: descriptor 0)
  member.pid = pid;
  member.ctl = sv[0];
  pool.members[i] = member;
  m.page->pool.pids[i].store(pid);
  m.events.trace(TraceCall::PoolFork, -1, pid, 0, 0, i, nullptr, fork_ns);
  return true;
}

// Member i died: report the connections it held and its reap, free its entries.
// Returns how many connections it held.
int report_death(Pool& pool, int i, pid_t pid, int status) {
  MasterState& m = pool.m;
  Counters& c = m.page->counters;
  // A signal: close() ended it (SIGKILL after the timeout), or it crashed (labCrash, kill -9).
  DisconnectReason reason = m.children_killed ? DisconnectReason::Aborted : DisconnectReason::Crash;
  // With the exec handler a member that held a connection had become the program (prefork.cc):
  // its end is the program's exit, as for the fork model's children. A program killed by a
  // signal (not close()'s) takes its process group with it, as in the fork model (fork_master.cc).
  if (m.exec != nullptr) reason = exec_disconnect_reason(status, m.children_killed);
  if (m.exec != nullptr && WIFSIGNALED(status) && !m.children_killed) kill(-pid, SIGKILL);
  uint32_t held = 0;
  int count = 0;
  for (int e = 0; e < m.max_clients; ++e) {
    ChildEntry& entry = m.page->children[e];
    if (entry.pid.load() != pid) continue;
    uint32_t id = entry.id;
    EventRecord rec{};
    rec.type = static_cast<uint8_t>(EventType::Disconnect);
    rec.id = id;
    rec.pid = pid;
    rec.slot = i;
    rec.code = static_cast<int32_t>(reason);
    rec.bytesIn = entry.bytes.in.load();
    rec.bytesOut = entry.bytes.out.load();
    bool announced = entry.announced;
    m.door.release(entry.door_ticket);  // its address no longer counts against maxPerSource
    entry.door_ticket = -1;
    entry.id = 0;
    entry.pid.store(0);
    if (id == 0) continue;  // claimed, not yet admitted and reported: nothing was counted
    c.active.fetch_sub(1);
    c.closed.fetch_add(1);
    if (announced) m.events.emit(rec);
    held = id;
    ++count;
  }
  // whenFull 'wait': prefork: its seat is free again (it may have died holding it); reuseport:
  // the places of its connections are.
  const uint64_t seat = uint64_t{1} << i;
  if ((m.page->pool.seats.fetch_and(~seat) & seat) != 0) room_made(m.page->pool.room);
  if (count > 0) tell_room(m);
  c.reaped.fetch_add(1);
  EventRecord reap{};
  reap.type = static_cast<uint8_t>(EventType::Reap);
  reap.id = count == 1 ? held : 0;  // the connection it served (prefork), if it held one
  reap.pid = pid;
  reap.slot = i;
  reap.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  reap.detail = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  m.events.emit(reap);
  return count;
}

// The master's copy of a member's own listener (reuseport).
void close_listener(Pool& pool, int i) {
  PoolMember& member = pool.members[i];
  if (member.listener < 0) return;
  close(member.listener);
  member.listener = -1;
}

void begin_stop(Pool& pool, PoolDesign& design) {
  if (pool.stopping) return;
  pool.stopping = true;
  MasterState& m = pool.m;
  // The members' own listeners stop now, from here: a member blocked in epoll_wait need not wake
  // first (its accept() then fails with EINVAL, and it closes its copy).
  for (int i = 0; i < m.workers; ++i) {
    PoolMember& member = pool.members[i];
    if (member.listener < 0) continue;
    shutdown(member.listener, SHUT_RDWR);
    m.events.trace(TraceCall::Shutdown, member.listener, 0, 0, 0, i);
    close_listener(pool, i);
  }
  design.on_stop(pool);
  if (m.lfd >= 0) {  // the design did not need it any more (reuseport before its handover)
    close(m.lfd);
    m.events.trace(TraceCall::CloseLfd, m.lfd, 0);
    m.lfd = -1;
  }
}

void read_control(Pool& pool, int i);

// Reaps every member that has exited and puts a new one in its place.
void reap_members(Pool& pool, PoolDesign& design) {
  MasterState& m = pool.m;
  for (;;) {
    int status = 0;
    pid_t pid = reap_any_child(&status, m.page->counters);  // waitpid(-1, WNOHANG), with the member's CPU time
    if (pid <= 0) return;
    int i = 0;
    while (i < m.workers && pool.members[i].pid != pid) ++i;
    m.events.trace(TraceCall::Waitpid, status, pid, 0, 0, i < m.workers ? i : -1);
    if (i == m.workers) continue;  // not a member (cannot happen: the master forks nothing else)
    // A member that said it was ready and died at once (an exec'd program that exits at once) may
    // have its ready message still unread: ppoll() returns EINTR, not the readable socket, when
    // SIGCHLD comes in the same moment. Read it now, or a healthy member looks like one that
    // could not start.
    if (!pool.members[i].ready && pool.members[i].ctl >= 0) read_control(pool, i);
    bool was_ready = pool.members[i].ready;
    m.page->pool.pids[i].store(0);
    const int held = report_death(pool, i, pid, status);
    pool.close_control(i);
    close_listener(pool, i);  // out of the SO_REUSEPORT group: no connection may go to it now
    pool.members[i] = PoolMember{};
    if (pool.stopping) continue;
    // A member that had become an exec'd program exits with the program's status: never fatal.
    bool fatal = WIFEXITED(status) && WEXITSTATUS(status) == kMemberExitFatal && !(m.exec != nullptr && held > 0);
    if (!was_ready || fatal) {
      // It could not start, or it reported a failure that a replacement would meet again: a
      // pool that forks in a loop helps nobody. The server stops (its Error record, if any, says
      // why; the master's exit status says that it stopped on its own).
      pool.exit_status = 1;
      begin_stop(pool, design);
      continue;
    }
    if (!spawn(pool, design, i)) emit_error(m, TraceCall::PoolFork, errno);  // retried (run_pool_master)
  }
}

void read_control(Pool& pool, int i) {
  PoolMember& member = pool.members[i];
  for (;;) {
    char message = 0;
    iovec iov{&message, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr hdr{};
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control;
    hdr.msg_controllen = sizeof control;
    ssize_t n = recvmsg(member.ctl, &hdr, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n == 1) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int fd = -1;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        close_listener(pool, i);
        member.listener = fd;
      }
      if (message == kMemberReady) member.ready = member.idle = true;
      if (message == kMemberIdle) member.idle = true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    pool.close_control(i);  // EOF: the member is leaving (its SIGCHLD reports it)
    return;
  }
}

// Sends `sig` to every member — with the exec handler to every process of the server's session
// and every orphan handed to the master (server_session.h): the members, those that became
// programs, what the programs started and what programs that exited left behind, each once.
// Before member i is SIGKILLed: waits until it is not writing the end of a connection, and holds
// its books so that it writes no other (finish_connection). Bounded: a member stopped halfway
// (a debugger) is killed after kBooksWaitMs all the same; one already dead is not waited for.
void hold_books(Pool& pool, int i) {
  std::atomic<uint32_t>& books = pool.m.page->pool.books[i];
  const int64_t give_up_at = monotonic_ms() + kBooksWaitMs;
  for (;;) {
    uint32_t seen = kBooksClosed;
    if (books.compare_exchange_strong(seen, kBooksHeld) || seen == kBooksHeld) return;
    if (seen == kBooksWriting && !books.compare_exchange_strong(seen, kBooksWatched)) continue;
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pool.members[i].pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid != 0) {
      return;  // dead already (halfway: its entry is still held, and reported)
    }
    const int64_t left = give_up_at - monotonic_ms();
    if (left <= 0) return;
    futex_wait_ms(books, kBooksWatched, left < 10 ? left : 10);
  }
}

void signal_members(Pool& pool, int sig) {
  MasterState& m = pool.m;
  if (m.exec != nullptr) {
    signal_session(m.self, m.self, m.self, sig);
    return;
  }
  for (int i = 0; i < m.workers; ++i) {
    if (pool.members[i].pid <= 0) continue;
    if (sig == SIGKILL) hold_books(pool, i);
    kill(pool.members[i].pid, sig);
  }
}

// Whether the master has any child left: a member not yet reaped, or an orphan it adopted.
bool has_children() {
  siginfo_t info{};
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// close()'s timeout (SIGUSR1) ends the members still serving. Without the exec handler a member is
// this program's own code: SIGKILL at once. With it, a serving member has become a program, which
// gets what the fork model's children get: SIGTERM and SIGCONT to its process group and the rest
// of the session, then SIGKILL after the grace time — as do, once no member is left, the processes
// programs that exited left behind. Returns how long until the next step is due (ms), or -1.
int64_t end_members(Pool& pool) {
  MasterState& m = pool.m;
  const bool leftovers_only = m.exec != nullptr && pool.stopping && pool.live() == 0;
  if ((m.abort_requested || leftovers_only) && !m.children_killed) {
    m.children_killed = 1;
    if (m.exec == nullptr) {
      signal_members(pool, SIGKILL);
      return -1;
    }
    m.force_kill_at = monotonic_ms() + kChildKillGraceMs;
    signal_members(pool, SIGTERM);
    signal_members(pool, SIGCONT);
  }
  if (!m.children_killed || m.exec == nullptr) return -1;
  if (!m.children_forced) {
    int64_t left = m.force_kill_at - monotonic_ms();
    if (left > 0) return left;
    m.children_forced = 1;
  }
  signal_members(pool, SIGKILL);
  return kSweepAgainMs;
}

}  // namespace

int Pool::live() const {
  int n = 0;
  for (int i = 0; i < m.workers; ++i) n += members[i].pid > 0 ? 1 : 0;
  return n;
}

int Pool::first_idle() const {
  for (int i = 0; i < m.workers; ++i) {
    if (members[i].pid > 0 && members[i].idle && members[i].ctl >= 0) return i;
  }
  return -1;
}

void Pool::close_control(int i) {
  if (members[i].ctl < 0) return;
  close(members[i].ctl);
  members[i].ctl = -1;
  members[i].idle = false;
}

[[noreturn]] void run_pool_master(MasterState& m, PoolDesign& design) {
  begin_master_process(m);  // before anything else, as run_master()
  the_pool_master = &m;
  if (const char* delay = getenv("POSIX_SERVERS_TEST_FINISH_DELAY_MS")) test_finish_delay_ms = atoi(delay);
  if (m.exec != nullptr) adopt_orphans();
  sigset_t ignored;
  block_all_signals(&ignored);  // from here on, signals arrive only inside ppoll()
  // The dispositions of run_master() (fork_master.cc), deliberately in parallel: each master has
  // handlers of its own, which name its own state (the_pool_master here).
  install_handler(SIGCHLD, on_sigchld, SA_NOCLDSTOP);
  install_handler(SIGTERM, on_stop, 0);
  install_handler(SIGUSR1, on_stop, 0);
  install_handler(SIGHUP, on_node_gone, 0);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, nullptr);

  Pool pool(m);
  TraceCall failed = TraceCall::PoolFork;
  if (!design.prepare(pool, failed)) {
    emit_error(m, failed, errno);
    _exit(1);
  }
  for (int i = 0; i < m.workers; ++i) {
    if (!spawn(pool, design, i)) {
      emit_error(m, TraceCall::PoolFork, errno);
      pool.exit_status = 1;
      begin_stop(pool, design);
      break;
    }
  }

  sigset_t wait_mask;
  sigemptyset(&wait_mask);
  int64_t escalation_ms = -1;  // end_members(): the next step of close()'s kill is due in this long
  for (;;) {
    // Every member is gone — and with the exec handler every orphan a program left (the master
    // adopted them), ended by end_members() once no member was left.
    if (pool.stopping && pool.live() == 0 && (m.exec == nullptr || !has_children())) _exit(pool.exit_status);
    pollfd fds[kMaxWorkers + 4];
    int owner[kMaxWorkers];
    int n = 0;
    bool missing = false;
    for (int i = 0; i < m.workers; ++i) {
      if (pool.members[i].pid == 0) missing = true;
      if (pool.members[i].ctl < 0) continue;
      owner[n] = i;
      fds[n++] = pollfd{pool.members[i].ctl, POLLIN, 0};
    }
    const int controls = n;
    n += design.master_fds(pool, fds + n);
    // A replacement that could not be forked is tried again every 100 ms.
    int64_t wait_ms = missing && !pool.stopping ? 100 : -1;
    if (escalation_ms >= 0 && (wait_ms < 0 || escalation_ms < wait_ms)) wait_ms = escalation_ms;
    const timespec timeout{wait_ms / 1000, (wait_ms % 1000) * 1000000};
    int rc = ppoll(fds, static_cast<nfds_t>(n), wait_ms >= 0 ? &timeout : nullptr, &wait_mask);
    if (rc > 0) {
      // Before reaping: a descriptor number closed by the reaping could be reused by a
      // replacement's control socket, and its poll result would then be read as the new one's.
      for (int k = 0; k < controls; ++k) {
        if (fds[k].revents != 0 && pool.members[owner[k]].ctl == fds[k].fd) read_control(pool, owner[k]);
      }
      design.on_master_ready(pool, fds + controls, n - controls);
    }
    if (child_exited) {
      child_exited = 0;
      reap_members(pool, design);
    }
    if (m.stop_requested) begin_stop(pool, design);
    escalation_ms = end_members(pool);
    if (missing && !pool.stopping) {
      for (int i = 0; i < m.workers; ++i) {
        if (pool.members[i].pid == 0 && !spawn(pool, design, i)) break;
      }
    }
    if (!pool.announced && !pool.stopping) {
      bool all_ready = true;
      for (int i = 0; i < m.workers; ++i) all_ready = all_ready && pool.members[i].ready;
      if (all_ready) {
        design.on_all_ready(pool);
        pool.announced = true;
        EventRecord listening{};
        listening.type = static_cast<uint8_t>(EventType::Listening);
        listening.pid = m.self;
        m.events.emit(listening);
      }
    }
  }
}

// ---- The books of one connection ----

namespace {

// maxClients: one more live connection unless that many are live, exactly across members.
bool admit(Counter& active, int max_clients) {
  uint64_t live = active.load();
  while (live < static_cast<uint64_t>(max_clients)) {
    if (active.compare_exchange_weak(live, live + 1)) return true;
  }
  return false;
}

// A free entry of the connection table, now owned by `member`. The search starts where this id
// falls, so that with connections ending roughly in order it usually ends at once.
ChildEntry* claim_entry(MasterState& m, pid_t member, uint32_t id, int32_t door_ticket) {
  const int start = static_cast<int>(id % static_cast<uint32_t>(m.max_clients));
  for (int k = 0; k < m.max_clients; ++k) {
    ChildEntry& entry = m.page->children[(start + k) % m.max_clients];
    int32_t free_pid = 0;
    if (!entry.pid.compare_exchange_strong(free_pid, member)) continue;
    entry.bytes.in.store(0);
    entry.bytes.out.store(0);
    entry.door_ticket = door_ticket;  // released by whoever frees the entry (finish_connection, report_death)
    entry.announced = false;          // until its Connection record is written
    entry.id = id;                    // the master reports an entry of a dead member only once this is set
    return &entry;
  }
  return nullptr;
}

}  // namespace

ChildEntry* admit_connection(MasterState& m, int index, pid_t member, int cfd, const sockaddr_storage& peer,
                             uint32_t id, bool reserved) {
  Counters& c = m.page->counters;
  // The door first (door.h): members admit concurrently, and its counts are exact across them.
  int32_t ticket = -1;
  if (!pass_door(m.door, cfd, peer, id, m.events, ticket, index)) {
    if (reserved) give_back_place(m);
    return nullptr;
  }
  ChildEntry* entry = nullptr;
  if (reserved || admit(c.active, m.max_clients)) {
    entry = claim_entry(m, member, id, ticket);
    // Entries are freed before `active` is counted down, so an admitted connection always finds
    // one; this only keeps the books true if that ever changed.
    if (entry == nullptr) c.active.fetch_sub(1);
  }
  if (entry == nullptr) {
    m.door.release(ticket);
    m.events.trace(TraceCall::SlotsFull, cfd, 0, 0, id, index);
    m.events.reject(peer, id, RejectReason::MaxClients, 0);
    close(cfd);  // after the Reject record (door.h: refused clients are heard in order)
    return nullptr;
  }
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Connection);
  rec.id = id;
  rec.pid = member;
  rec.slot = index;
  set_peer(rec, peer);
  entry->announced = m.events.announce_connection(rec);
  return entry;
}

void finish_connection(MasterState& m, int index, ChildEntry& entry, DisconnectReason reason) {
  std::atomic<uint32_t>& books = m.page->pool.books[index];
  uint32_t closed = kBooksClosed;
  if (!books.compare_exchange_strong(closed, kBooksWriting)) {
    // Held: the master is SIGKILLing this member and reports the connection when it reaps it.
    for (;;) futex_wait(books, kBooksHeld);
  }
  finish_connection_in_master(m, index, entry, reason);
  if (books.exchange(kBooksClosed) == kBooksWatched) futex_wake_all(books);
}

void finish_connection_in_master(MasterState& m, int index, ChildEntry& entry, DisconnectReason reason) {
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Disconnect);
  rec.id = entry.id;
  rec.pid = entry.pid.load();
  rec.slot = index;
  rec.code = static_cast<int32_t>(reason);
  rec.bytesIn = entry.bytes.in.load();
  rec.bytesOut = entry.bytes.out.load();
  bool announced = entry.announced;
  m.door.release(entry.door_ticket);
  entry.door_ticket = -1;
  entry.id = 0;
  entry.pid.store(0);
  if (test_finish_delay_ms > 0) usleep(static_cast<useconds_t>(test_finish_delay_ms) * 1000);
  Counters& c = m.page->counters;
  c.active.fetch_sub(1);
  c.closed.fetch_add(1);
  if (announced) m.events.emit(rec);
  tell_room(m);
}

bool reserve_place(MasterState& m) { return admit(m.page->counters.active, m.max_clients); }

void give_back_place(MasterState& m) {
  m.page->counters.active.fetch_sub(1);
  tell_room(m);
}

void tell_room(MasterState& m) {
  if (m.room_fd < 0 || m.page->pool.room.waiters.load() == 0) return;
  const uint64_t one = 1;
  ssize_t ignored = write(m.room_fd, &one, sizeof one);  // EAGAIN only after 2^64 - 2 unread: never
  (void)ignored;
}

[[noreturn]] void member_fatal(MasterState& m, TraceCall call, int err) {
  emit_error(m, call, err);
  _exit(kMemberExitFatal);
}

ssize_t send_with_descriptor(int sock, const void* data, size_t len, int fd) {
  iovec iov{const_cast<void*>(data), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr hdr{};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  if (fd >= 0) {
    hdr.msg_control = control;
    hdr.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&hdr);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  return sendmsg(sock, &hdr, MSG_NOSIGNAL);
}

void tell_master(int ctl, char message, int listener) {
  ssize_t ignored = send_with_descriptor(ctl, &message, 1, listener);
  (void)ignored;
}

}  // namespace ps
