// prefork: UNP chapter 30's preforked servers (designs 2–5). `workers` members are forked once, at
// start (pool_master.h); each is an iterative server — one client at a time, to the end — so no
// process is created per connection, and a client beyond the pool waits in the listen backlog
// until a member is free. How the members take turns (acceptLock):
//
//   none   (UNP 30.6) every idle member blocks in accept() on the shared listener. The kernel
//          wakes one of them per connection (Linux queues accept() sleepers exclusively); UNP's
//          "thundering herd" was every sleeper woken for each connection.
//   flock  (UNP 30.7) a file lock around accept(): only the holder sleeps in accept(), the others
//          in fcntl(F_SETLKW). The lock is a POSIX record lock, as in UNP: it belongs to the
//          process, so the one descriptor inherited by every member works (a flock(2) lock belongs
//          to the open file description, which all members share: they would not exclude each
//          other). The file is unlinked as soon as it is created: nothing is left on disk, and
//          the kernel drops a lock whose holder dies.
//   mutex  (UNP 30.8) a PTHREAD_PROCESS_SHARED mutex in the shared page around accept(). Robust:
//          a member that dies holding it (it sleeps in accept() with it) does not wedge the pool —
//          the next locker gets EOWNERDEAD and makes it consistent again.
//   pass   (UNP 30.9) the master alone accepts, and passes each descriptor to an idle member over
//          the member's control socket (sendmsg with SCM_RIGHTS); the member says when it is idle
//          again. While no member is idle the master does not accept: clients wait in the backlog.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../accept_guard.h"
#include "../eintr.h"
#include "../process_hygiene.h"
#include "pool_master.h"

namespace ps {

namespace {

// What the master sends with each descriptor (pass).
struct PassedConnection {
  uint32_t id;    // the connection's id
  int32_t entry;  // its entry in the connection table, claimed by the master for the member
};

// recvmsg() of one PassedConnection and its descriptor (UNP's read_fd; the msghdr set-up is the
// SCM_RIGHTS boilerplate pool_master.cc's receives share). Returns what recvmsg
// returned; `fd` is the descriptor received (close-on-exec), or -1 if none came with it.
ssize_t receive_descriptor(int sock, PassedConnection& msg, int& fd, Counters& counters) {
  iovec iov{&msg, sizeof msg};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr hdr{};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof control;
  fd = -1;
  ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recvmsg(sock, &hdr, MSG_CMSG_CLOEXEC); });
  if (n <= 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  }
  return n;
}

class Prefork final : public PoolDesign {
 public:
  bool prepare(Pool& pool, TraceCall& failed) override {
    MasterState& m = pool.m;
    switch (m.accept_lock) {
      case AcceptLock::Flock:
        return make_lock_file(m, failed);
      case AcceptLock::Mutex:
        return make_mutex(m, failed);
      case AcceptLock::Pass: {
        // Only the master accepts, from its poll loop: a client that resets between poll() and
        // accept() must not block it (UNP 16.6).
        int flags = fcntl(m.lfd, F_GETFL);
        if (flags < 0 || fcntl(m.lfd, F_SETFL, flags | O_NONBLOCK) != 0) {
          failed = TraceCall::Accept;
          return false;
        }
        return true;
      }
      case AcceptLock::None:
        return true;
    }
    return true;
  }

  int member_fds(const MasterState& m, int* out) const override {
    if (m.accept_lock == AcceptLock::Pass) return 0;  // a pass member never sees the listener
    int n = 0;
    out[n++] = m.lfd;
    out[n++] = m.reserve_fd;
    if (lock_fd_ >= 0) out[n++] = lock_fd_;
    return n;
  }

  [[noreturn]] void run_member(MasterState& m, int index, int ctl) override {
    unblock_all_signals();  // SIGTERM's default action is how close()'s timeout ends a member
    if (m.accept_lock == AcceptLock::Pass) serve_passed(m, index, ctl);
    accept_and_serve(m, index, ctl);
  }

  int master_fds(Pool& pool, pollfd* out) override {
    // pass: accept only while a member is idle (and, whenFull 'wait', while there is room);
    // otherwise clients wait in the backlog.
    if (pool.m.accept_lock != AcceptLock::Pass || pool.stopping || pool.m.lfd < 0 || pool.first_idle() < 0) return 0;
    if (full(pool.m)) return 0;  // a member's 'I', or a reaped program, brings the master back here
    out[0] = pollfd{pool.m.lfd, POLLIN, 0};
    return 1;
  }

  void on_master_ready(Pool& pool, const pollfd* fds, int n) override {
    if (n == 0 || fds[0].revents == 0) return;
    MasterState& m = pool.m;
    Counters& c = m.page->counters;
    for (int member = pool.first_idle(); member >= 0 && m.lfd >= 0 && !full(m); member = pool.first_idle()) {
      sockaddr_storage peer{};
      int cfd = accept_client(m.lfd, peer, c, m.events);
      if (cfd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        AcceptVerdict verdict =
            handle_accept_failure(err, m.lfd, m.reserve_fd, c, m.events, &m.page->pool.accepts[member], 0);
        if (verdict == AcceptVerdict::Fatal) {
          EventRecord rec{};
          rec.type = static_cast<uint8_t>(EventType::Error);
          rec.code = err;
          m.events.emit(rec);
          pool.exit_status = 1;
          m.stop_requested = 1;  // the master's loop stops the pool
          return;
        }
        if (err == EMFILE || err == ENFILE) return;  // poll() tells when to try again
        continue;
      }
      pass(pool, member, cfd, peer);
    }
  }

  void on_stop(Pool& pool) override {
    MasterState& m = pool.m;
    m.page->pool.stopping.store(1);
    open_gate(m.page->pool.room);  // members waiting for a seat (whenFull 'wait') see the stop
    if (m.accept_lock == AcceptLock::Pass) {
      // Members waiting in recvmsg() read EOF and leave; a serving member leaves after its client.
      for (int i = 0; i < m.workers; ++i) pool.close_control(i);
    } else {
      // shutdown() acts on the socket every member shares: each one blocked in accept() wakes
      // with EINVAL (a lock holder first, then each in turn), sees `stopping` and leaves, and no
      // new client is accepted from now on.
      shutdown(m.lfd, SHUT_RDWR);
      m.events.trace(TraceCall::Shutdown, m.lfd, 0);
    }
    close(m.lfd);
    m.events.trace(TraceCall::CloseLfd, m.lfd, 0);
    m.lfd = -1;
  }

 private:
  // UNP 30.7's my_lock_init(): mkstemp() then unlink() at once.
  bool make_lock_file(MasterState& m, TraceCall& failed) {
    const char* dir = getenv("TMPDIR");
    if (dir == nullptr || *dir == '\0') dir = "/tmp";
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/posix-servers-lock-XXXXXX", dir) >= static_cast<int>(sizeof path)) {
      errno = ENAMETOOLONG;
      failed = TraceCall::LockFile;
      return false;
    }
    lock_fd_ = mkostemp(path, O_CLOEXEC);
    if (lock_fd_ < 0) {
      failed = TraceCall::LockFile;
      return false;
    }
    unlink(path);
    m.events.trace(TraceCall::LockFile, lock_fd_, 0);
    return true;
  }

  // UNP 30.8's my_lock_init(), made robust.
  bool make_mutex(MasterState& m, TraceCall& failed) {
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(&m.page->pool.accept_mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
      errno = rc;
      failed = TraceCall::MutexLock;
      return false;
    }
    return true;
  }

  void lock(MasterState& m, int index) {
    Counters& c = m.page->counters;
    if (m.accept_lock == AcceptLock::Flock) {
      struct flock fl {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      int rc = retry_eintr(c.eintrRetries, [&] { return fcntl(lock_fd_, F_SETLKW, &fl); });
      int err = rc < 0 ? errno : 0;
      m.events.trace(TraceCall::FcntlLock, lock_fd_, rc, err, 0, index);
      if (rc < 0) member_fatal(m, TraceCall::FcntlLock, err);
    } else if (m.accept_lock == AcceptLock::Mutex) {
      pthread_mutex_t* mu = &m.page->pool.accept_mutex;
      int rc = pthread_mutex_lock(mu);
      // Its holder died holding it (SIGKILLed while it slept in accept()): the accept() it was
      // in protects no state of ours, so the mutex is simply declared consistent and used.
      if (rc == EOWNERDEAD) pthread_mutex_consistent(mu);
      m.events.trace(TraceCall::MutexLock, -1, rc == EOWNERDEAD ? 0 : rc, rc, 0, index);
      if (rc != 0 && rc != EOWNERDEAD) member_fatal(m, TraceCall::MutexLock, rc);
    }
  }

  void unlock(MasterState& m, int index) {
    if (m.accept_lock == AcceptLock::Flock) {
      struct flock fl {};
      fl.l_type = F_UNLCK;
      fl.l_whence = SEEK_SET;
      int rc = fcntl(lock_fd_, F_SETLK, &fl);
      m.events.trace(TraceCall::FcntlUnlock, lock_fd_, rc, rc < 0 ? errno : 0, 0, index);
    } else if (m.accept_lock == AcceptLock::Mutex) {
      int rc = pthread_mutex_unlock(&m.page->pool.accept_mutex);
      m.events.trace(TraceCall::MutexUnlock, -1, rc, rc, 0, index);
    }
  }

  // whenFull 'wait' with the master accepting (pass): maxClients connections are live.
  static bool full(const MasterState& m) {
    return m.when_full == WhenFull::Wait && m.page->counters.active.load() >= static_cast<uint64_t>(m.max_clients);
  }

  // whenFull 'wait', members accepting (none, flock, mutex): a member takes a seat before it
  // accepts — bit `index` of the page's seats, at most maxClients of them — and keeps it while it
  // serves, so that no member accepts a client the pool would have to refuse; it waits at the
  // gate while every seat is taken (room_gate.h). False: the pool is stopping.
  static bool take_seat(MasterState& m, int index) {
    if (m.when_full != WhenFull::Wait) return true;
    PoolPage& pool = m.page->pool;
    const uint64_t mine = uint64_t{1} << index;
    auto try_take = [&] {
      uint64_t seats = pool.seats.load();
      for (;;) {
        if ((seats & mine) != 0) return true;  // still held from the last round
        if (__builtin_popcountll(seats) >= m.max_clients) return false;
        if (pool.seats.compare_exchange_weak(seats, seats | mine)) return true;
      }
    };
    return wait_for_room(pool.room, try_take, [&] { return pool.stopping.load() != 0; });
  }

  // The member's connection is over: its seat goes to a waiting member.
  static void give_up_seat(MasterState& m, int index) {
    if (m.when_full != WhenFull::Wait) return;
    m.page->pool.seats.fetch_and(~(uint64_t{1} << index));
    room_made(m.page->pool.room);
  }

  // One connection, to the end (the member is an iterative server), then its books.
  static void serve(MasterState& m, int index, int cfd, ChildEntry& entry) {
    uint32_t id = entry.id;
    if (m.exec != nullptr) become_program(m, cfd, id);  // its seat is freed when the master reaps it
    DisconnectReason reason = serve_connection(cfd, m.serve, m.page->counters, entry.bytes);
    if (reason == DisconnectReason::Crash) abort();  // lab hook: reaped with SIGABRT, reported, replaced
    close(cfd);
    m.events.trace(TraceCall::CloseConn, cfd, 0, 0, id, index);
    finish_connection(m, index, entry, reason);
    give_up_seat(m, index);
  }

  // The exec handler: the member becomes the program for this client (exec_child.h). It is then
  // reaped like a member that died — its connection reported with the program's exit status —
  // and the master forks a fresh member in its place: the pool holds `workers` processes, each
  // waiting to become one program. As in the fork model's child, async-signal-safe calls only;
  // a process group of its own, which the master SIGKILLs if the program dies of a signal.
  [[noreturn]] static void become_program(MasterState& m, int cfd, uint32_t id) {
    sockaddr_storage local{}, peer{};
    socklen_t len = sizeof local;
    getsockname(cfd, reinterpret_cast<sockaddr*>(&local), &len);
    len = sizeof peer;
    getpeername(cfd, reinterpret_cast<sockaddr*>(&peer), &len);
    set_tcp_vars(*m.exec, local, peer);
    setpgid(0, 0);
    exec_program(*m.exec, cfd, m.events, id);
  }

  // none, flock, mutex: [lock] accept [unlock], serve, again.
  [[noreturn]] void accept_and_serve(MasterState& m, int index, int ctl) {
    Counters& c = m.page->counters;
    PoolPage& pool = m.page->pool;
    const pid_t self = getpid();
    tell_master(ctl, kMemberReady);
    for (;;) {
      if (pool.stopping.load()) _exit(kMemberExitStopped);
      if (!take_seat(m, index)) _exit(kMemberExitStopped);
      lock(m, index);
      if (pool.stopping.load()) {
        unlock(m, index);
        _exit(kMemberExitStopped);
      }
      sockaddr_storage peer{};
      int cfd = accept_client(m.lfd, peer, c, m.events);
      int err = errno;
      uint32_t id = 0;
      if (cfd >= 0) {
        id = static_cast<uint32_t>(c.accepted.fetch_add(1) + 1);
        pool.accepts[index].fetch_add(1);
        m.events.trace(TraceCall::WorkerAccept, m.lfd, cfd, 0, id, index, &peer);
      }
      unlock(m, index);
      if (cfd < 0) {
        if (pool.stopping.load()) _exit(kMemberExitStopped);  // the shutdown() of close()
        if (handle_accept_failure(err, m.lfd, m.reserve_fd, c, m.events, &pool.accepts[index]) ==
            AcceptVerdict::Retry) {
          continue;
        }
        member_fatal(m, TraceCall::WorkerAccept, err);
      }
      ChildEntry* entry = admit_connection(m, index, self, cfd, peer, id);
      if (entry != nullptr) serve(m, index, cfd, *entry);
    }
  }

  // pass: wait for a descriptor from the master, serve it, say idle, again.
  [[noreturn]] static void serve_passed(MasterState& m, int index, int ctl) {
    tell_master(ctl, kMemberReady);
    for (;;) {
      PassedConnection msg{};
      int cfd = -1;
      ssize_t n = receive_descriptor(ctl, msg, cfd, m.page->counters);
      // The master closed its end: close() began. If this member's last 'I' was still unread
      // there, a SOCK_SEQPACKET peer reads ECONNRESET instead of EOF: the same news.
      if (n == 0 || (n < 0 && errno == ECONNRESET)) _exit(kMemberExitStopped);
      if (n < 0) member_fatal(m, TraceCall::Recvmsg, errno);
      m.events.trace(TraceCall::Recvmsg, ctl, cfd, 0, msg.id, index);
      if (cfd < 0 || n != static_cast<ssize_t>(sizeof msg) || msg.entry < 0 || msg.entry >= m.max_clients) {
        member_fatal(m, TraceCall::Recvmsg, EPROTO);  // not what this master sends
      }
      serve(m, index, cfd, m.page->children[msg.entry]);
      tell_master(ctl, kMemberIdle);
      m.events.trace(TraceCall::WorkerIdle, ctl, 0, 0, msg.id, index);
    }
  }

  // The master's side of pass: one accepted client to idle member `member`.
  static void pass(Pool& pool, int member, int cfd, const sockaddr_storage& peer) {
    MasterState& m = pool.m;
    Counters& c = m.page->counters;
    uint32_t id = static_cast<uint32_t>(c.accepted.fetch_add(1) + 1);
    m.page->pool.accepts[member].fetch_add(1);
    m.events.trace(TraceCall::Accept, m.lfd, cfd, 0, id, -1, &peer);
    PoolMember& target = pool.members[member];
    ChildEntry* entry = admit_connection(m, member, target.pid, cfd, peer, id);
    if (entry == nullptr) return;  // refused (maxClients): closed and reported
    PassedConnection msg{id, static_cast<int32_t>(entry - m.page->children)};
    uint64_t send_ns = monotonic_ns();  // the member may receive (and trace) before this returns
    ssize_t sent = retry_eintr(c.eintrRetries, [&] { return send_with_descriptor(target.ctl, &msg, sizeof msg, cfd); });
    int err = sent < 0 ? errno : 0;
    m.events.trace(TraceCall::Sendmsg, target.ctl, cfd, err, id, member, nullptr, send_ns);
    target.idle = false;
    close(cfd);  // the member has its own descriptor now (or the connection is over)
    m.events.trace(TraceCall::CloseCfd, cfd, 0, 0, id);
    if (sent < 0) {
      // The member is going away (its SIGCHLD is on the way): this client is over.
      finish_connection_in_master(m, member, *entry, DisconnectReason::Error);
      pool.close_control(member);
    }
  }

  int lock_fd_ = -1;  // flock: the unlinked lock file, inherited by every member
};

}  // namespace

[[noreturn]] void run_prefork_master(MasterState& m) {
  Prefork design;
  run_pool_master(m, design);
}

}  // namespace ps
