// reuseport: `workers` processes (pool_master.h), each with a listening socket of its own on the
// same address and port (SO_REUSEPORT, Linux 3.9+) and an epoll loop of its own serving many
// clients: the kernel spreads new connections over the listeners by a hash of the connection's
// addresses and ports, so no process ever wakes for a connection another one takes.
//
// Node still makes the first socket (socket → SO_REUSEPORT → bind → listen, so a port in use is
// a synchronous EADDRINUSE); each worker then opens its own listener on the address Node bound,
// and once every worker listens the master closes Node's, which would otherwise take its share of
// connections with nobody to accept them. As with any SO_REUSEPORT socket, a listener that
// closes (a worker that dies) resets the connections still waiting in its own backlog; its
// replacement opens a new one.
//
// The loop (ref/epoll.c's, UNP 6.8 with epoll): non-blocking sockets, level-triggered, one recv()
// per wake-up per client so that one busy client cannot starve the others; a short send() keeps
// the rest in the connection's PendingEcho and switches it from EPOLLIN to EPOLLOUT until it is
// out. Idle clients (idleTimeoutMs) are found in O(1): every connection has the same timeout, so
// a list ordered by last activity has the oldest first.
//
// SIGTERM (close) makes a worker close its listener and leave once its clients are gone; it is
// blocked except inside epoll_pwait(), so it cannot slip in between the flag test and the wait.
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>

#include "accept_guard.h"
#include "clock.h"
#include "pool_master.h"
#include "process_hygiene.h"

namespace ps {

namespace {

constexpr uint64_t kListenerKey = ~0ull;  // epoll data of the listener; a connection's is its entry index
constexpr int kEventsPerWait = 64;
constexpr int kAcceptsPerWake = 64;  // then the clients' events get their turn

volatile sig_atomic_t stop_accepting = 0;
void on_sigterm(int) { stop_accepting = 1; }

// One client of this worker, at the index of its entry in the connection table. Plain data: the
// arena is fresh anonymous memory, and all zeroes (entry == nullptr) is a free place.
struct Connection {
  ChildEntry* entry;  // nullptr: free
  int fd;
  bool writing;     // waiting for EPOLLOUT to send what is pending
  int64_t last_ms;  // the last time it made progress (idleTimeoutMs)
  Connection* older;
  Connection* newer;
  PendingEcho echo;
};

class Worker {
 public:
  Worker(MasterState& m, int index, const sockaddr_storage& address, socklen_t address_len)
      : m_(m), index_(index), self_(getpid()), address_(address), address_len_(address_len) {}

  [[noreturn]] void run(int ctl) {
    // SIGTERM: stop accepting. Blocked (as everything else) except inside epoll_pwait.
    struct sigaction sa {};
    sa.sa_handler = on_sigterm;
    sigfillset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigset_t wait_mask;
    sigfillset(&wait_mask);
    sigdelset(&wait_mask, SIGTERM);

    listen_on_the_address();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) member_fatal(m_, TraceCall::EpollCtl, errno);
    watch(EPOLL_CTL_ADD, lfd_, EPOLLIN, kListenerKey, 0);
    // The connections' state, one per entry of the connection table. mmap, not malloc: this
    // process is a fork of the master and keeps to async-signal-safe calls; a page is only paid
    // for once a connection uses it.
    void* arena = mmap(nullptr, sizeof(Connection) * static_cast<size_t>(m_.max_clients), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) member_fatal(m_, TraceCall::EpollCtl, errno);
    conns_ = static_cast<Connection*>(arena);
    tell_master(ctl, kMemberReady);

    epoll_event events[kEventsPerWait];
    for (;;) {
      if (stop_accepting && lfd_ >= 0) {
        close(lfd_);  // also leaves the epoll set: it was its only reference
        m_.events.trace(TraceCall::CloseLfd, lfd_, 0, 0, 0, index_);
        lfd_ = -1;
      }
      if (lfd_ < 0 && live_ == 0) _exit(kMemberExitStopped);
      int n = epoll_pwait(ep_, events, kEventsPerWait, wait_timeout_ms(), &wait_mask);
      if (n < 0) {
        if (errno == EINTR) continue;  // SIGTERM: the loop's first test acts on it
        member_fatal(m_, TraceCall::EpollWait, errno);
      }
      m_.events.trace(TraceCall::EpollWait, ep_, n, 0, 0, index_);
      for (int k = 0; k < n; ++k) {
        if (events[k].data.u64 == kListenerKey) {
          accept_clients();
        } else {
          Connection& c = conns_[events[k].data.u64];
          if (c.entry != nullptr) on_event(c, events[k].events);
        }
      }
      drop_idle();
    }
  }

 private:
  // socket → SO_REUSEADDR, SO_REUSEPORT → bind → listen, as Node's own listener was made.
  void listen_on_the_address() {
    lfd_ = socket(address_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    m_.events.trace(TraceCall::Socket, -1, lfd_, lfd_ < 0 ? errno : 0, 0, index_);
    if (lfd_ < 0) member_fatal(m_, TraceCall::Socket, errno);
    int one = 1;
    if (setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(lfd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      member_fatal(m_, TraceCall::Socket, errno);
    }
    if (bind(lfd_, reinterpret_cast<const sockaddr*>(&address_), address_len_) != 0) {
      int err = errno;
      m_.events.trace(TraceCall::Bind, lfd_, -1, err, 0, index_, &address_);
      member_fatal(m_, TraceCall::Bind, err);
    }
    m_.events.trace(TraceCall::Bind, lfd_, 0, 0, 0, index_, &address_);
    if (listen(lfd_, m_.backlog) != 0) member_fatal(m_, TraceCall::Listen, errno);
    m_.events.trace(TraceCall::Listen, lfd_, m_.backlog, 0, 0, index_);
  }

  bool watch(int op, int fd, uint32_t events, uint64_t key, uint32_t id) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = key;
    int rc = epoll_ctl(ep_, op, fd, &ev);
    m_.events.trace(TraceCall::EpollCtl, fd, (static_cast<int64_t>(op) << 16) | events, rc < 0 ? errno : 0, id, index_);
    if (rc < 0 && key == kListenerKey) member_fatal(m_, TraceCall::EpollCtl, errno);
    return rc == 0;
  }

  // The listener is readable: accept what is queued (it is non-blocking), a bounded batch.
  void accept_clients() {
    Counters& c = m_.page->counters;
    Counter& mine = m_.page->pool.accepts[index_];
    for (int k = 0; k < kAcceptsPerWake && lfd_ >= 0; ++k) {
      sockaddr_storage peer{};
      int cfd = accept_client(lfd_, peer, c, m_.events, SOCK_NONBLOCK);
      if (cfd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        // Out of descriptors: refuse the pending client with the reserve descriptor, without
        // waiting (epoll says when the next one is there; waiting would stall every client).
        if (handle_accept_failure(err, lfd_, m_.reserve_fd, c, m_.events, &mine, 0) == AcceptVerdict::Fatal) {
          member_fatal(m_, TraceCall::WorkerAccept, err);
        }
        if (err == EMFILE || err == ENFILE) return;
        continue;
      }
      uint32_t id = static_cast<uint32_t>(c.accepted.fetch_add(1) + 1);
      mine.fetch_add(1);
      m_.events.trace(TraceCall::WorkerAccept, lfd_, cfd, 0, id, index_, &peer);
      ChildEntry* entry = admit_connection(m_, index_, self_, cfd, peer, id);
      if (entry == nullptr) continue;  // refused (maxClients): closed and reported
      Connection& conn = conns_[entry - m_.page->children];
      conn.entry = entry;
      conn.fd = cfd;
      conn.writing = false;
      conn.last_ms = 0;
      conn.older = conn.newer = nullptr;
      conn.echo.offset = conn.echo.length = 0;
      ++live_;
      touch(conn);
      if (!watch(EPOLL_CTL_ADD, cfd, EPOLLIN, static_cast<uint64_t>(entry - m_.page->children), id)) {
        end(conn, DisconnectReason::Error);
      }
    }
  }

  void on_event(Connection& conn, uint32_t ready) {
    DisconnectReason reason = DisconnectReason::End;
    EchoStep step;
    Counters& c = m_.page->counters;
    if (conn.writing) {
      if (!(ready & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      step = echo_writable(conn.fd, c, conn.entry->bytes, conn.echo, reason);
    } else {
      if (!(ready & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
      step = echo_readable(conn.fd, m_.serve, c, conn.entry->bytes, conn.echo, reason);
    }
    switch (step) {
      case EchoStep::Done:
        if (reason == DisconnectReason::Crash) abort();  // lab hook: every client of this worker is reported
        end(conn, reason);
        return;
      case EchoStep::Pending:
        if (!conn.writing && !watch(EPOLL_CTL_MOD, conn.fd, EPOLLOUT, key_of(conn), conn.entry->id)) {
          end(conn, DisconnectReason::Error);
          return;
        }
        conn.writing = true;
        break;
      case EchoStep::Again:
        if (conn.writing && !watch(EPOLL_CTL_MOD, conn.fd, EPOLLIN, key_of(conn), conn.entry->id)) {
          end(conn, DisconnectReason::Error);
          return;
        }
        conn.writing = false;
        break;
    }
    touch(conn);
  }

  void end(Connection& conn, DisconnectReason reason) {
    uint32_t id = conn.entry->id;
    close(conn.fd);  // also leaves the epoll set
    m_.events.trace(TraceCall::CloseConn, conn.fd, 0, 0, id, index_);
    conn.fd = -1;
    forget(conn);
    --live_;
    finish_connection(m_, index_, *conn.entry, reason);
    conn.entry = nullptr;
  }

  uint64_t key_of(const Connection& conn) const { return static_cast<uint64_t>(&conn - conns_); }

  // ---- idleTimeoutMs: a list of live connections, least recently active first ----

  void forget(Connection& conn) {
    if (conn.older != nullptr) conn.older->newer = conn.newer;
    if (conn.newer != nullptr) conn.newer->older = conn.older;
    if (oldest_ == &conn) oldest_ = conn.newer;
    if (newest_ == &conn) newest_ = conn.older;
    conn.older = conn.newer = nullptr;
  }

  void touch(Connection& conn) {
    if (m_.serve.idleTimeoutMs <= 0) return;
    conn.last_ms = monotonic_ms();
    if (newest_ == &conn) return;
    forget(conn);
    conn.older = newest_;
    if (newest_ != nullptr) newest_->newer = &conn;
    newest_ = &conn;
    if (oldest_ == nullptr) oldest_ = &conn;
  }

  int wait_timeout_ms() const {
    if (m_.serve.idleTimeoutMs <= 0 || oldest_ == nullptr) return -1;
    int64_t left = oldest_->last_ms + m_.serve.idleTimeoutMs - monotonic_ms();
    return left <= 0 ? 0 : static_cast<int>(left);
  }

  // A client silent this long, or one that stopped reading while a send() waited, is dropped.
  void drop_idle() {
    if (m_.serve.idleTimeoutMs <= 0) return;
    const int64_t now = monotonic_ms();
    while (oldest_ != nullptr && now - oldest_->last_ms >= m_.serve.idleTimeoutMs) {
      end(*oldest_, DisconnectReason::Idle);
    }
  }

  MasterState& m_;
  const int index_;
  const pid_t self_;
  const sockaddr_storage address_;
  const socklen_t address_len_;
  int lfd_ = -1;
  int ep_ = -1;
  Connection* conns_ = nullptr;
  int live_ = 0;
  Connection* oldest_ = nullptr;
  Connection* newest_ = nullptr;
};

class Reuseport final : public PoolDesign {
 public:
  bool prepare(Pool& pool, TraceCall& failed) override {
    address_len_ = sizeof address_;
    if (getsockname(pool.m.lfd, reinterpret_cast<sockaddr*>(&address_), &address_len_) != 0) {
      failed = TraceCall::Bind;
      return false;
    }
    return true;
  }

  int member_fds(const MasterState& m, int* out) const override {
    out[0] = m.reserve_fd;  // Node's listener stays with the master: each worker opens its own
    return 1;
  }

  [[noreturn]] void run_member(MasterState& m, int index, int ctl) override {
    Worker worker(m, index, address_, address_len_);
    worker.run(ctl);
  }

  void on_all_ready(Pool& pool) override {
    MasterState& m = pool.m;
    close(m.lfd);
    m.events.trace(TraceCall::CloseNodeLfd, m.lfd, 0);
    m.lfd = -1;
  }

  void on_stop(Pool& pool) override {
    for (int i = 0; i < pool.m.workers; ++i) {
      if (pool.members[i].pid > 0) kill(pool.members[i].pid, SIGTERM);
    }
  }

 private:
  sockaddr_storage address_{};
  socklen_t address_len_ = 0;
};

}  // namespace

[[noreturn]] void run_reuseport_master(MasterState& m) {
  Reuseport design;
  run_pool_master(m, design);
}

}  // namespace ps
