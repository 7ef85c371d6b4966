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
// the rest in the connection's PendingOutput and switches it from EPOLLIN to EPOLLOUT until it is
// out. The handler's steps come from connection.h (serve_begin/readable/writable): daytime and
// time send their message at accept and close; chargen is watched for both (EPOLLIN | EPOLLOUT:
// the stream, and the client's EOF); discard reads and answers nothing. The time limits of ServePolicy apply as in
// serve_connection() (ConnectionLimits): idle, lifetime, rate. Each is found in O(1): all connections share one period
// per limit, so a list per limit, appended to as deadlines move, stays ordered — the next deadline is always its head.
//
// close(): the master shuts down every worker's listener itself (each worker passed it a copy
// when it was ready), so none accepts from then on, and sends SIGTERM, which makes a worker close
// its listener and leave once its clients are gone; SIGTERM is blocked except inside
// epoll_pwait(), so it cannot slip in between the flag test and the wait.
//
// whenFull 'wait' (room_gate.h): a worker takes its client's place in `active` before accept()
// (reserve_place: a CAS, as admission is), so that no worker accepts a client the pool would
// have to refuse. With no place left it stops watching its listener (its clients wait in its
// backlog) and waits for the pool's room eventfd, which every worker watches edge-triggered and
// whoever ends a connection writes to while a worker waits (tell_room).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <new>

#include "../accept_guard.h"
#include "../clock.h"
#include "../process_hygiene.h"
#include "pool_master.h"

namespace ps {

namespace {

constexpr uint64_t kListenerKey = ~0ull;  // epoll data of the listener; a connection's is its entry index
constexpr uint64_t kRoomKey = ~0ull - 1;  // the pool's room eventfd (whenFull 'wait')
constexpr int kEventsPerWait = 64;
constexpr int kAcceptsPerWake = 64;  // then the clients' events get their turn

volatile sig_atomic_t stop_accepting = 0;
void on_sigterm(int) { stop_accepting = 1; }

struct Connection;

// A connection's place in one of the deadline lists.
struct Links {
  Connection* prev = nullptr;
  Connection* next = nullptr;
  bool in = false;
};

// One client of this worker, built in the arena at the index of its entry in the connection
// table. The arena is fresh anonymous memory: a place never used reads entry == nullptr.
struct Connection {
  Connection(const ServePolicy& policy, ChildEntry* e, int cfd) : entry(e), fd(cfd), limits(policy) {}
  ChildEntry* entry;  // nullptr once the connection is over
  int fd;
  ServeStep waiting = ServeStep::Again;  // what it waits for: readable (Again), writable (Pending), both (Stream)
  int64_t last_ms = 0;                   // the last time it made progress (idleTimeoutMs)
  Links idle, life, rate;                // its places in the three deadline lists
  ConnectionLimits limits;
  PendingOutput out;
};

// The connections with one kind of deadline, earliest first, through one of their Links.
class DeadlineList {
 public:
  explicit DeadlineList(Links Connection::*links) : links_(links) {}
  Connection* front() const { return head_; }

  // Appends: the caller only ever appends a deadline no earlier than every other in the list.
  void push_back(Connection& c) {
    Links& l = c.*links_;
    l.prev = tail_;
    l.next = nullptr;
    l.in = true;
    if (tail_ != nullptr) (tail_->*links_).next = &c;
    tail_ = &c;
    if (head_ == nullptr) head_ = &c;
  }

  void remove(Connection& c) {
    Links& l = c.*links_;
    if (!l.in) return;
    if (l.prev != nullptr) (l.prev->*links_).next = l.next;
    if (l.next != nullptr) (l.next->*links_).prev = l.prev;
    if (head_ == &c) head_ = l.next;
    if (tail_ == &c) tail_ = l.prev;
    l = Links{};
  }

 private:
  Links Connection::*links_;
  Connection* head_ = nullptr;
  Connection* tail_ = nullptr;
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
    // Edge-triggered and never read: each write is news to every worker, whoever looked first.
    if (m_.room_fd >= 0) watch(EPOLL_CTL_ADD, m_.room_fd, EPOLLIN | EPOLLET, kRoomKey, 0);
    // The connections' state, one per entry of the connection table. mmap, not malloc: this
    // process is a fork of the master and keeps to async-signal-safe calls; a page is only paid
    // for once a connection uses it.
    void* arena = mmap(nullptr, sizeof(Connection) * static_cast<size_t>(m_.max_clients), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) member_fatal(m_, TraceCall::EpollCtl, errno);
    conns_ = static_cast<Connection*>(arena);
    tell_master(ctl, kMemberReady, lfd_);  // the master keeps a copy, to stop it at close()

    epoll_event events[kEventsPerWait];
    for (;;) {
      if (stop_accepting && lfd_ >= 0) {
        if (waiting_for_room_) resume_listener();  // no longer a waiter (the listener goes now)
        close(lfd_);                               // also leaves the epoll set: it was its only reference
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
        } else if (events[k].data.u64 == kRoomKey) {
          if (waiting_for_room_ && m_.page->counters.active.load() < static_cast<uint64_t>(m_.max_clients)) {
            resume_listener();
          }
        } else {
          Connection& c = conns_[events[k].data.u64];
          if (c.entry != nullptr) on_event(c, events[k].events);
        }
      }
      enforce_limits();
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

  // whenFull 'wait' and no place left: stop watching the listener (EPOLLHUP, close()'s shutdown,
  // is still reported) until the room eventfd says a place was freed. Counted as a waiter first,
  // then looked at again: a place freed in between is not missed (tell_room writes only while
  // someone waits). False if a place was found after all.
  bool wait_for_room() {
    PoolPage& pool = m_.page->pool;
    pool.room.waiters.fetch_add(1);
    if (m_.page->counters.active.load() < static_cast<uint64_t>(m_.max_clients)) {
      pool.room.waiters.fetch_sub(1);
      return false;
    }
    waiting_for_room_ = true;
    watch(EPOLL_CTL_MOD, lfd_, 0, kListenerKey, 0);
    return true;
  }

  void resume_listener() {
    waiting_for_room_ = false;
    m_.page->pool.room.waiters.fetch_sub(1);
    if (lfd_ >= 0) watch(EPOLL_CTL_MOD, lfd_, EPOLLIN, kListenerKey, 0);
  }

  // The listener is readable: accept what is queued (it is non-blocking), a bounded batch.
  void accept_clients() {
    Counters& c = m_.page->counters;
    Counter& mine = m_.page->pool.accepts[index_];
    const bool wait = m_.when_full == WhenFull::Wait;
    for (int k = 0; k < kAcceptsPerWake && lfd_ >= 0; ++k) {
      if (wait && !reserve_place(m_)) {
        if (wait_for_room()) return;
        continue;  // a place was freed meanwhile: try again
      }
      sockaddr_storage peer{};
      int cfd = accept_client(lfd_, peer, c, m_.events, SOCK_NONBLOCK);
      if (cfd < 0) {
        int err = errno;
        if (wait) give_back_place(m_);
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (err == EINVAL) {
          stop_accepting = 1;  // the master shut our listener down: close() began
          return;
        }
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
      ChildEntry* entry = admit_connection(m_, index_, self_, cfd, peer, id, wait);
      if (entry == nullptr) continue;  // refused (maxClients): closed and reported
      Connection& conn = *new (&conns_[entry - m_.page->children]) Connection(m_.serve, entry, cfd);
      ++live_;
      if (m_.serve.maxConnectionMs > 0) by_life_.push_back(conn);
      if (m_.serve.minBytesPerSecond > 0) by_window_.push_back(conn);
      touch(conn);
      if (!watch(EPOLL_CTL_ADD, cfd, EPOLLIN, static_cast<uint64_t>(entry - m_.page->children), id)) {
        end(conn, DisconnectReason::Error);
        continue;
      }
      // What the handler does first (daytime, time: their message; chargen: the stream).
      DisconnectReason reason = DisconnectReason::End;
      next(conn, serve_begin(cfd, m_.serve, c, entry->bytes, conn.out, conn.limits, reason), reason);
    }
  }

  static uint32_t interest(ServeStep step) {
    return step == ServeStep::Pending ? EPOLLOUT : step == ServeStep::Stream ? EPOLLIN | EPOLLOUT : EPOLLIN;
  }

  void on_event(Connection& conn, uint32_t ready) {
    DisconnectReason reason = DisconnectReason::End;
    ServeStep step = conn.waiting;
    Counters& c = m_.page->counters;
    ConnBytes& bytes = conn.entry->bytes;
    const bool readable = (ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    const bool writable = (ready & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
    if (conn.waiting == ServeStep::Pending) {
      if (!writable) return;
      step = serve_writable(conn.fd, m_.serve, c, bytes, conn.out, conn.limits, reason);
    } else if (conn.waiting == ServeStep::Again) {
      if (!readable) return;
      step = serve_readable(conn.fd, m_.serve, c, bytes, conn.out, conn.limits, reason);
    } else {  // Stream (chargen): the client's bytes (or EOF), then as much of the stream as fits
      if (readable) step = serve_readable(conn.fd, m_.serve, c, bytes, conn.out, conn.limits, reason);
      if (step == ServeStep::Stream && writable) {
        step = serve_writable(conn.fd, m_.serve, c, bytes, conn.out, conn.limits, reason);
      }
    }
    next(conn, step, reason);
  }

  // After a step: end the connection, or wait for what the step asks.
  void next(Connection& conn, ServeStep step, DisconnectReason reason) {
    if (step == ServeStep::Done) {
      if (reason == DisconnectReason::Crash) abort();  // lab hook: every client of this worker is reported
      end(conn, reason);
      return;
    }
    if (interest(step) != interest(conn.waiting) &&
        !watch(EPOLL_CTL_MOD, conn.fd, interest(step), key_of(conn), conn.entry->id)) {
      end(conn, DisconnectReason::Error);
      return;
    }
    conn.waiting = step;
    touch(conn);
  }

  void end(Connection& conn, DisconnectReason reason) {
    uint32_t id = conn.entry->id;
    close(conn.fd);  // also leaves the epoll set
    m_.events.trace(TraceCall::CloseConn, conn.fd, 0, 0, id, index_);
    conn.fd = -1;
    by_activity_.remove(conn);
    by_life_.remove(conn);
    by_window_.remove(conn);
    --live_;
    finish_connection(m_, index_, *conn.entry, reason);
    conn.entry = nullptr;
  }

  uint64_t key_of(const Connection& conn) const { return static_cast<uint64_t>(&conn - conns_); }

  // ---- The time limits (ConnectionLimits), each through its own list ----

  // The connection made progress: it goes to the end of the idle list.
  void touch(Connection& conn) {
    if (m_.serve.idleTimeoutMs <= 0) return;
    conn.last_ms = monotonic_ms();
    by_activity_.remove(conn);
    by_activity_.push_back(conn);
  }

  // The nearest deadline of any list, as epoll_pwait's timeout (-1: none).
  int wait_timeout_ms() const {
    int64_t next = ConnectionLimits::kNever;
    if (const Connection* c = by_activity_.front()) next = std::min(next, c->last_ms + m_.serve.idleTimeoutMs);
    if (const Connection* c = by_life_.front()) next = std::min(next, c->limits.life_end);
    if (const Connection* c = by_window_.front()) next = std::min(next, c->limits.window_end);
    if (next == ConnectionLimits::kNever) return -1;
    return static_cast<int>(std::clamp<int64_t>(next - monotonic_ms(), 0, INT_MAX));
  }

  // Drops the clients whose limit has come, as serve_connection() would: open too long
  // (lifetime), too slow over a rate window (a window that was enough starts the next one, and
  // goes to the end of its list), silent — or not reading while a send() waits — too long (idle).
  void enforce_limits() {
    const int64_t now = monotonic_ms();
    while (Connection* c = by_life_.front()) {
      if (now < c->limits.life_end) break;
      end(*c, DisconnectReason::Lifetime);
    }
    while (Connection* c = by_window_.front()) {
      if (now < c->limits.window_end) break;
      if (c->limits.check(now) != DisconnectReason::End) {
        end(*c, DisconnectReason::Slow);
      } else {
        by_window_.remove(*c);
        by_window_.push_back(*c);
      }
    }
    while (Connection* c = by_activity_.front()) {
      if (now - c->last_ms < m_.serve.idleTimeoutMs) break;
      end(*c, DisconnectReason::Idle);
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
  bool waiting_for_room_ = false;                // whenFull 'wait': the listener is unwatched until there is room
  DeadlineList by_activity_{&Connection::idle};  // idleTimeoutMs: least recently active first
  DeadlineList by_life_{&Connection::life};      // maxConnectionMs: oldest first
  DeadlineList by_window_{&Connection::rate};    // minBytesPerSecond: the rate window ending first
};

class Reuseport final : public PoolDesign {
 public:
  bool prepare(Pool& pool, TraceCall& failed) override {
    address_len_ = sizeof address_;
    if (getsockname(pool.m.lfd, reinterpret_cast<sockaddr*>(&address_), &address_len_) != 0) {
      failed = TraceCall::Bind;
      return false;
    }
    if (pool.m.when_full == WhenFull::Wait) {
      pool.m.room_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (pool.m.room_fd < 0) {
        failed = TraceCall::EpollCtl;
        return false;
      }
    }
    return true;
  }

  int member_fds(const MasterState& m, int* out) const override {
    out[0] = m.reserve_fd;  // Node's listener stays with the master: each worker opens its own
    out[1] = m.room_fd;     // whenFull 'wait' (-1 otherwise: nothing kept)
    return 2;
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
