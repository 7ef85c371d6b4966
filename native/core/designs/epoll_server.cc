// The event loop: one thread serves every client (UNP 6.8's select server, with Linux's epoll) —
// the C counterpart of the `node` model, which runs the same design in libuv.
//
//   server thread   epfd = epoll_create1(); lfd non-blocking; epoll_ctl(ADD, lfd, EPOLLIN)
//                   loop { n = epoll_wait(epfd, events, timeout);
//                          for each ready descriptor:
//                            lfd: accept4 every pending client (non-blocking), epoll_ctl(ADD, cfd, EPOLLIN)
//                            cfd: one recv, the handler, one send (serve_readable, connection.h);
//                                 what the client did not take is kept and cfd is watched for
//                                 EPOLLOUT instead of EPOLLIN
//                          drop the connections past a deadline of their ServePolicy }
//
// No thread or process per connection: strace -f shows no clone(), and /proc/self/task holds one
// thread for all of them.
//
// Level-triggered, one read per wake-up: a descriptor with more to read is reported again by the
// next epoll_wait, so one busy client cannot starve the others (as in ref/epoll.c).
//
// Backpressure: a client that does not read its echo makes send() come up short. The rest is
// kept in the connection's buffer (PendingOutput, 16 KiB: one read), and while that holds anything
// the connection is not read (interest EPOLLOUT, not EPOLLIN): the server's memory per client
// stays at one read, and the other clients are served meanwhile. The reuseport model's loops serve
// with the same step functions. Half-close: the client's EOF is read only once its
// output is out, so everything is echoed before close() sends our FIN. The other handlers come
// from the same steps (serve_begin at accept): daytime and time send their message and close;
// chargen is watched for EPOLLIN and EPOLLOUT at once (the stream, and the client's EOF);
// discard reads and answers nothing.
//
// Time limits (ServePolicy, as serve_connection keeps them for the blocking models): idle,
// lifetime and rate, one list per limit ordered by its deadline (deadline_lists.h); epoll_wait
// sleeps until the nearest. O(1) per event, no scan of the connections.
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
#include <algorithm>
#include <cassert>
#include <cerrno>
#include <memory>
#include <new>

#include "../accept_guard.h"
#include "../clock.h"
#include "../deadline_lists.h"
#include "../eintr.h"
#include "../in_process_server.h"

namespace ps {

namespace {

constexpr int kMaxEvents = 256;
// Accepts per listener wake-up: the clients already connected get their turn between batches.
constexpr int kAcceptBatch = 64;
constexpr uint32_t kListenerTag = UINT32_MAX;  // epoll_event.data of lfd; a connection's is its slot index

class EpollServer final : public InProcessServer {
 public:
  explicit EpollServer(const ServerOptions& options)
      : InProcessServer(options, options.maxClients), conns_(new Conn[options.maxClients]), deadlines_(options.serve) {}
  ~EpollServer() override { shut_down_now(); }  // the server thread uses conns_ and epfd_
  using InProcessServer::launch;

 private:
  // One live connection, at its slot's index.
  struct Conn {
    Slot* slot = nullptr;  // nullptr: free
    // The read buffer, and what the client has not taken yet (connection.h): allocated the first
    // time the slot serves, kept for the slot's next connections.
    std::unique_ptr<PendingOutput> out;
    // What it waits for: readable (Again), writable (Pending: output is pending, not read), both
    // (Stream: chargen).
    ServeStep waiting = ServeStep::Again;
    // The steps count the bytes moved into window_got; the deadlines are the lists' below.
    ConnectionLimits limits{ServePolicy{}};
    DeadlineLink<Conn> idle, life, rate;
  };

  SysError prepare() override {
    epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
    int err = epfd_.valid() ? 0 : errno;
    events_.trace(TraceCall::EpollCreate, -1, epfd_.get(), err);
    if (err != 0) return {err, "epoll_create1"};
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
    // The record's result: (op << 16) | events, as event_record.h says.
    events_.trace(TraceCall::EpollCtl, fd, (static_cast<int64_t>(op) << 16) | interest, err, id);
    errno = err;
    return rc == 0;
  }

  void accept_loop() override {
    const ServePolicy& policy = options_.serve;
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
      if (policy.timed() || paused_) now_ms_ = monotonic_ms();
      for (int i = 0; i < n; ++i) {
        if (ready[i].data.u32 == kListenerTag)
          on_listener();
        else
          on_connection(conns_[ready[i].data.u32], ready[i].events);
      }
      if (paused_ && now_ms_ >= resume_ms_) resume_listener();
      expire();
    }
    epfd_.reset();
  }

  // -1 (sleep until an event), or the time to the nearest deadline or the end of an accept pause.
  int next_timeout_ms() { return wait_ms_until(std::min(paused_ ? resume_ms_ : INT64_MAX, deadlines_.next())); }

  void on_listener() {
    Counters& c = page_->counters;
    for (int i = 0; i < kAcceptBatch && listening_; ++i) {
      // whenFull 'wait' (room_gate.h): maxClients live, nothing is accepted (the clients wait in
      // the backlog) until one of this loop's own connections ends (end()).
      if (options_.whenFull == WhenFull::Wait && !slots_.has_free()) {
        if (close_listener_if_stopping()) {  // EPOLLHUP: stop(), even while full — the port is free now
          listening_ = false;
          return;
        }
        full_ = true;
        arm_listener();
        return;
      }
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
      int32_t door_ticket = -1;
      if (!pass_the_door(cfd, peer, id, door_ticket)) continue;  // refused at the door: closed, reported
      Slot* slot = slots_.claim(cfd, peer, id, door_ticket);
      if (slot == nullptr) {  // maxClients live: refuse
        reject(cfd, peer, id, door_ticket, RejectReason::MaxClients, 0);
        continue;
      }
      begin_connection(slot, -1);
      ++live_;
      int index = slots_.index_of(slot);
      Conn& conn = conns_[index];
      conn.slot = slot;
      conn.waiting = ServeStep::Again;
      deadlines_.start(conn, now_ms_);
      if (!watch(EPOLL_CTL_ADD, cfd, EPOLLIN, static_cast<uint32_t>(index), id)) {
        end(conn, DisconnectReason::Error);
        continue;
      }
      // What the handler does first: daytime and time send their message, chargen its stream.
      if (!prepare_output(conn)) continue;
      DisconnectReason reason = DisconnectReason::End;
      after(conn, serve_begin(cfd, options_.serve, c, slot->bytes, *conn.out, conn.limits, reason), reason, 0);
    }
  }

  // Out of memory or descriptors with no reserve: stop watching the listener for a moment rather
  // than have level-triggered epoll report it again at once. EPOLLHUP (stop) is still reported.
  void pause_listener() {
    paused_ = true;
    resume_ms_ = monotonic_ms() + kAcceptPauseMs;
    arm_listener();
    if (armed_ != 0) paused_ = false;  // epoll_ctl failed: it stays watched, as before
  }

  void resume_listener() {
    paused_ = false;
    arm_listener();
  }

  // The listener is watched for EPOLLIN unless paused (EMFILE) or full (whenFull 'wait').
  void arm_listener() {
    const uint32_t wanted = paused_ || full_ ? 0u : static_cast<uint32_t>(EPOLLIN);
    if (!listening_ || wanted == armed_) return;
    if (watch(EPOLL_CTL_MOD, lfd_.get(), wanted, kListenerTag, 0)) armed_ = wanted;
  }

  void on_connection(Conn& conn, uint32_t ready) {
    if (conn.slot == nullptr) return;  // ended earlier in this batch
    const bool readable = (ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    const bool writable = (ready & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
    if (conn.waiting == ServeStep::Pending ? !writable
        : conn.waiting == ServeStep::Again ? !readable
                                           : !(readable || writable)) {
      return;
    }
    if (!prepare_output(conn)) return;
    Slot* slot = conn.slot;
    const uint64_t moved =
        slot->bytes.in.load(std::memory_order_relaxed) + slot->bytes.out.load(std::memory_order_relaxed);
    Counters& c = page_->counters;
    const ServePolicy& policy = options_.serve;
    DisconnectReason reason = DisconnectReason::End;
    ServeStep next = conn.waiting;
    if (conn.waiting == ServeStep::Pending) {
      next = serve_writable(slot->cfd, policy, c, slot->bytes, *conn.out, conn.limits, reason);
    } else if (conn.waiting == ServeStep::Again) {
      next = serve_readable(slot->cfd, policy, c, slot->bytes, *conn.out, conn.limits, reason);
    } else {  // Stream (chargen): the client's bytes (or EOF), then as much of the stream as fits
      if (readable) next = serve_readable(slot->cfd, policy, c, slot->bytes, *conn.out, conn.limits, reason);
      if (next == ServeStep::Stream && writable) {
        next = serve_writable(slot->cfd, policy, c, slot->bytes, *conn.out, conn.limits, reason);
      }
    }
    after(conn, next, reason, moved);
  }

  // The read buffer of the connection's slot, allocated the first time the slot serves (false:
  // out of memory, the connection is ended).
  bool prepare_output(Conn& conn) {
    if (conn.out) return true;
    conn.out.reset(new (std::nothrow) PendingOutput);
    if (conn.out) return true;
    end(conn, DisconnectReason::Error);
    return false;
  }

  static uint32_t interest(ServeStep step) {
    return step == ServeStep::Pending ? EPOLLOUT : step == ServeStep::Stream ? EPOLLIN | EPOLLOUT : EPOLLIN;
  }

  // After a step: end the connection (EOF with its output all out, an error, a greeting sent), or
  // watch it for what the step waits for. Bytes moved (`moved` was the count before) count as
  // activity for the idle limit.
  void after(Conn& conn, ServeStep next, DisconnectReason reason, uint64_t moved) {
    if (next == ServeStep::Done) return end(conn, reason);
    Slot* slot = conn.slot;
    if (slot->bytes.in.load(std::memory_order_relaxed) + slot->bytes.out.load(std::memory_order_relaxed) != moved) {
      deadlines_.touch(conn, now_ms_);
    }
    if (interest(next) == interest(conn.waiting)) {
      conn.waiting = next;
      return;
    }
    conn.waiting = next;
    if (!watch(EPOLL_CTL_MOD, slot->cfd, interest(next), static_cast<uint32_t>(slots_.index_of(slot)), slot->id)) {
      end(conn, DisconnectReason::Error);
    }
  }

  // The deadlines that have come (deadline_lists.h).
  void expire() {
    deadlines_.expire(now_ms_, [this](Conn& conn, DisconnectReason reason) { end(conn, reason); });
  }

  void end_all(DisconnectReason reason) {
    for (int i = 0; i < slots_.capacity(); ++i) {
      if (conns_[i].slot != nullptr) end(conns_[i], reason);
    }
  }

  // close(cfd) (in end_connection) also removes it from the epoll set.
  void end(Conn& conn, DisconnectReason reason) {
    deadlines_.remove(conn);
    Slot* slot = conn.slot;
    conn.slot = nullptr;
    --live_;
    end_connection(slot, reason, -1);
    if (full_) {  // whenFull 'wait': a place is free, the listener is watched again
      full_ = false;
      arm_listener();
    }
  }

  UniqueFd epfd_;
  std::unique_ptr<Conn[]> conns_;
  int live_ = 0;           // connections with a Conn
  bool listening_ = true;  // lfd is open and watched
  bool paused_ = false;    // lfd is watched for nothing until resume_ms_
  bool full_ = false;      // whenFull 'wait': lfd is watched for nothing until a connection ends
  uint32_t armed_ = static_cast<uint32_t>(EPOLLIN);  // what lfd is watched for now
  int64_t resume_ms_ = 0;
  int64_t now_ms_ = 0;  // when the last epoll_wait returned (kept only with a limit)
  ConnectionDeadlines<Conn> deadlines_;
};

}  // namespace

std::unique_ptr<Server> start_epoll_server(const ServerOptions& options, SysError& error) {
  return launch_in_process<EpollServer>(options, error);
}

}  // namespace ps
