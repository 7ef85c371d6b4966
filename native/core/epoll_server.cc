// The event loop: one thread serves every client (UNP 6.8's select server, with Linux's epoll) —
// the C counterpart of the `node` model, which runs the same design in libuv.
//
//   server thread   epfd = epoll_create1(); lfd non-blocking; epoll_ctl(ADD, lfd, EPOLLIN)
//                   loop { n = epoll_wait(epfd, events, timeout);
//                          for each ready descriptor:
//                            lfd: accept4 every pending client (non-blocking), epoll_ctl(ADD, cfd, EPOLLIN)
//                            cfd: one recv, the handler, one send; what the client did not take
//                                 is kept and cfd is watched for EPOLLOUT instead of EPOLLIN
//                          drop the connections idle past their deadline }
//
// No thread or process per connection: strace -f shows no clone(), and /proc/self/task holds one
// thread for all of them.
//
// Level-triggered, one read per wake-up: a descriptor with more to read is reported again by the
// next epoll_wait, so one busy client cannot starve the others (as in ref/epoll.c).
//
// Backpressure: a client that does not read its echo makes send() come up short. The rest is
// kept in the connection's output buffer, and while that holds anything the connection is not
// read (interest EPOLLOUT, not EPOLLIN): the server's memory per client stays at one read, and
// the other clients are served meanwhile. Half-close: the client's EOF is read only once its
// output is out, so everything is echoed before close() sends our FIN.
//
// Idle timeout: every connection has the same timeout, so a list ordered by last activity is a
// complete timer structure (as Node's timers keep one list per duration): activity moves a
// connection to the tail, the head is the next deadline, epoll_wait sleeps until it. O(1) per
// event, no scan of the connections.
//
// Out of descriptors (EMFILE): the reserve descriptor trick of accept_guard.h, without ever
// sleeping in the loop. close(cfd) also takes cfd out of the epoll set (its only reference), so
// the end of a connection costs no epoll_ctl(DEL).
//
// close(): stop()'s shutdown(lfd) makes the listener report EPOLLHUP; the loop closes it (the port
// is free) and serves the live connections until they end (close()'s timeout shuts them down,
// which they report as readable), then returns.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "accept_guard.h"
#include "clock.h"
#include "eintr.h"
#include "in_process_server.h"

namespace ps {

namespace {

constexpr int kMaxEvents = 256;
// Accepts per listener wake-up: the clients already connected get their turn between batches.
constexpr int kAcceptBatch = 64;
constexpr size_t kReadSize = 64 * 1024;
constexpr uint32_t kListenerTag = UINT32_MAX;  // epoll_event.data of lfd; a connection's is its slot index

class EpollServer final : public InProcessServer {
 public:
  explicit EpollServer(const ServerOptions& options)
      : InProcessServer(options, options.maxClients), conns_(new Conn[options.maxClients]) {}
  ~EpollServer() override { shut_down_now(); }  // the server thread uses conns_ and epfd_
  using InProcessServer::launch;

 private:
  // One live connection, at its slot's index.
  struct Conn {
    Slot* slot = nullptr;     // nullptr: free
    char* pending = nullptr;  // output the client has not taken yet (malloc'd, at most one read)
    size_t pending_off = 0;
    size_t pending_len = 0;
    int64_t deadline_ms = 0;  // idle timeout
    Conn* older = nullptr;    // the idle list, oldest activity first
    Conn* newer = nullptr;
  };

  SysError prepare() override {
    epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
    events_.trace(TraceCall::EpollCreate, -1, epfd_.get(), epfd_.valid() ? 0 : errno);
    if (!epfd_.valid()) return {errno, "epoll_create1"};
    close_conn_result_ = epfd_.get();
    // Non-blocking: a client that resets between epoll_wait and accept must not block the loop
    // in accept() (UNP 16.6).
    int flags = fcntl(lfd_.get(), F_GETFL);
    if (flags < 0 || fcntl(lfd_.get(), F_SETFL, flags | O_NONBLOCK) != 0) return {errno, "fcntl"};
    if (!watch(EPOLL_CTL_ADD, lfd_.get(), EPOLLIN, kListenerTag, 0)) return {errno, "epoll_ctl"};
    return {};
  }

  bool watch(int op, int fd, uint32_t interest, uint32_t tag, uint32_t id) {
    epoll_event ev{};
    ev.events = interest;
    ev.data.u32 = tag;
    int rc = epoll_ctl(epfd_.get(), op, fd, &ev);
    int err = rc == 0 ? 0 : errno;
    events_.trace(op == EPOLL_CTL_ADD ? TraceCall::EpollCtlAdd : TraceCall::EpollCtlMod, fd, interest, err, id);
    errno = err;
    return rc == 0;
  }

  void accept_loop() override {
    idle_ms_ = options_.serve.idleTimeoutMs;
    epoll_event ready[kMaxEvents];
    Counters& c = page_->counters;
    while (listening_ || live_ > 0) {
      int n =
          retry_eintr(c.eintrRetries, [&] { return epoll_wait(epfd_.get(), ready, kMaxEvents, next_timeout_ms()); });
      if (n < 0) {  // only a bug can get here (EBADF, EINVAL): report it, end everything
        int err = errno;
        if (listening_) fail_accept(err);
        listening_ = false;
        end_all(DisconnectReason::Error);
        break;
      }
      if (n > 0) events_.trace(TraceCall::EpollWait, epfd_.get(), n);
      if (idle_ms_ > 0 || paused_) now_ms_ = monotonic_ms();
      for (int i = 0; i < n; ++i) {
        if (ready[i].data.u32 == kListenerTag)
          on_listener();
        else
          on_connection(conns_[ready[i].data.u32], ready[i].events);
      }
      if (paused_ && now_ms_ >= resume_ms_) resume_listener();
      expire_idle();
    }
    epfd_.reset();
  }

  // -1 (sleep until an event), or the time to the next idle deadline or the end of an accept pause.
  int next_timeout_ms() {
    if (!(idle_ms_ > 0 && oldest_ != nullptr) && !paused_) return -1;
    int64_t now = monotonic_ms();
    int64_t wake = paused_ ? resume_ms_ : INT64_MAX;
    if (idle_ms_ > 0 && oldest_ != nullptr && oldest_->deadline_ms < wake) wake = oldest_->deadline_ms;
    int64_t left = wake - now;
    return left <= 0 ? 0 : (left > INT32_MAX ? INT32_MAX : static_cast<int>(left));
  }

  void on_listener() {
    Counters& c = page_->counters;
    for (int i = 0; i < kAcceptBatch && listening_; ++i) {
      sockaddr_storage peer{};
      socklen_t len = 0;
      int cfd = retry_eintr(c.eintrRetries, [&] {
        len = sizeof peer;
        return accept4(lfd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      });
      if (cfd < 0) {
        int err = errno;
        if (close_listener_if_stopping()) {  // stop(): shutdown(lfd) made accept fail (EINVAL)
          listening_ = false;
          return;
        }
        int reserve = reserve_fd_.release();
        AcceptVerdict verdict = handle_accept_failure_nonblocking(err, lfd_.get(), reserve, c, events_);
        reserve_fd_.reset(reserve);
        if (verdict == AcceptVerdict::Retry) continue;
        if (verdict == AcceptVerdict::Pause) {
          pause_listener();
        } else if (verdict == AcceptVerdict::Fatal) {
          fail_accept(err);
          listening_ = false;
        }
        return;  // Drained: back to epoll_wait
      }
      uint32_t id = record_accept(cfd, peer);
      Slot* slot = slots_.claim(cfd, peer, id);
      if (slot == nullptr) {  // maxClients live: refuse
        reject(cfd, peer, id, RejectReason::MaxClients, 0);
        continue;
      }
      begin_connection(slot, -1);
      ++live_;
      int index = slots_.index_of(slot);
      Conn& conn = conns_[index];
      conn.slot = slot;
      touch(conn);
      if (!watch(EPOLL_CTL_ADD, cfd, EPOLLIN, static_cast<uint32_t>(index), id)) end(conn, DisconnectReason::Error);
    }
  }

  // Out of memory or descriptors with no reserve: stop watching the listener for a moment rather
  // than have level-triggered epoll report it again at once. EPOLLHUP (stop) is still reported.
  void pause_listener() {
    if (!watch(EPOLL_CTL_MOD, lfd_.get(), 0, kListenerTag, 0)) return;
    paused_ = true;
    resume_ms_ = monotonic_ms() + kAcceptPauseMs;
  }

  void resume_listener() {
    paused_ = false;
    if (listening_) watch(EPOLL_CTL_MOD, lfd_.get(), EPOLLIN, kListenerTag, 0);
  }

  void on_connection(Conn& conn, uint32_t ready) {
    if (conn.slot == nullptr) return;  // ended earlier in this batch
    if (conn.pending_len > 0) {
      if (ready & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(conn);
    } else if (ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      on_readable(conn);
    }
  }

  // One read, the handler, one send.
  void on_readable(Conn& conn) {
    Counters& c = page_->counters;
    Slot* slot = conn.slot;
    ssize_t n = retry_eintr(c.eintrRetries, [&] { return recv(slot->cfd, buffer_, sizeof buffer_, 0); });
    if (n == 0) return end(conn, DisconnectReason::End);  // the client closed; its output is all out
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return end(conn, DisconnectReason::Error);
    }
    c.bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    slot->bytes.in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    touch(conn);
    apply_handler(options_.serve.handler, buffer_, static_cast<size_t>(n));
    size_t sent = 0;
    if (!send_some(conn, buffer_, static_cast<size_t>(n), sent)) return end(conn, DisconnectReason::Error);
    if (sent == static_cast<size_t>(n)) return;
    // A partial write: keep the rest and stop reading until the client has taken it.
    size_t rest = static_cast<size_t>(n) - sent;
    conn.pending = static_cast<char*>(malloc(rest));
    if (conn.pending == nullptr) return end(conn, DisconnectReason::Error);
    memcpy(conn.pending, buffer_ + sent, rest);
    conn.pending_off = 0;
    conn.pending_len = rest;
    if (!watch(EPOLL_CTL_MOD, slot->cfd, EPOLLOUT, static_cast<uint32_t>(slots_.index_of(slot)), slot->id)) {
      end(conn, DisconnectReason::Error);
    }
  }

  void on_writable(Conn& conn) {
    Slot* slot = conn.slot;
    size_t sent = 0;
    if (!send_some(conn, conn.pending + conn.pending_off, conn.pending_len, sent)) {
      return end(conn, DisconnectReason::Error);
    }
    conn.pending_off += sent;
    conn.pending_len -= sent;
    if (conn.pending_len > 0) return;  // still full: wait for the next EPOLLOUT
    free(conn.pending);
    conn.pending = nullptr;
    if (!watch(EPOLL_CTL_MOD, slot->cfd, EPOLLIN, static_cast<uint32_t>(slots_.index_of(slot)), slot->id)) {
      end(conn, DisconnectReason::Error);
    }
  }

  // Non-blocking send of up to n bytes; `sent` is what the kernel took (0 when the socket buffer
  // is full). False on an error (the client reset, or close()'s shutdown: EPIPE).
  bool send_some(Conn& conn, const char* data, size_t n, size_t& sent) {
    Counters& c = page_->counters;
    ssize_t w = retry_eintr(c.eintrRetries, [&] { return send(conn.slot->cfd, data, n, MSG_NOSIGNAL); });
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      w = 0;
    }
    sent = static_cast<size_t>(w);
    if (w > 0) {
      c.bytesOut.fetch_add(sent, std::memory_order_relaxed);
      conn.slot->bytes.out.fetch_add(sent, std::memory_order_relaxed);
      touch(conn);
    }
    return true;
  }

  // Activity: the connection's idle deadline moves to now + idleTimeoutMs, the newest of all.
  void touch(Conn& conn) {
    if (idle_ms_ <= 0) return;
    unlink(conn);
    conn.deadline_ms = now_ms_ + idle_ms_;
    conn.older = newest_;
    conn.newer = nullptr;
    if (newest_ != nullptr)
      newest_->newer = &conn;
    else
      oldest_ = &conn;
    newest_ = &conn;
  }

  void unlink(Conn& conn) {
    if (conn.older != nullptr) conn.older->newer = conn.newer;
    if (conn.newer != nullptr) conn.newer->older = conn.older;
    if (oldest_ == &conn) oldest_ = conn.newer;
    if (newest_ == &conn) newest_ = conn.older;
    conn.older = conn.newer = nullptr;
  }

  void expire_idle() {
    if (idle_ms_ <= 0) return;
    while (oldest_ != nullptr && oldest_->deadline_ms <= now_ms_) end(*oldest_, DisconnectReason::Idle);
  }

  void end_all(DisconnectReason reason) {
    for (int i = 0; i < slots_.capacity(); ++i) {
      if (conns_[i].slot != nullptr) end(conns_[i], reason);
    }
  }

  // close(cfd) (in end_connection) also removes it from the epoll set.
  void end(Conn& conn, DisconnectReason reason) {
    unlink(conn);
    free(conn.pending);
    conn.pending = nullptr;
    conn.pending_len = 0;
    Slot* slot = conn.slot;
    conn.slot = nullptr;
    --live_;
    end_connection(slot, reason, -1);
  }

  UniqueFd epfd_;
  std::unique_ptr<Conn[]> conns_;
  int live_ = 0;           // connections with a Conn
  bool listening_ = true;  // lfd is open and watched
  bool paused_ = false;    // lfd is watched for nothing until resume_ms_
  int64_t resume_ms_ = 0;
  int idle_ms_ = 0;         // options_.serve.idleTimeoutMs; 0: no timer
  int64_t now_ms_ = 0;      // when the last epoll_wait returned (kept only with a timer)
  Conn* oldest_ = nullptr;  // the idle list's head: the next deadline
  Conn* newest_ = nullptr;
  char buffer_[kReadSize];  // every read lands here; only what a client does not take is copied
};

}  // namespace

std::unique_ptr<Server> start_epoll_server(const ServerOptions& options, SysError& error) {
  std::unique_ptr<EpollServer> server(new EpollServer(options));
  error = server->launch();
  if (error) return nullptr;
  return server;
}

}  // namespace ps
