// The design after epoll: one thread serves every client through io_uring (io_ring.h). Instead of
// asking the kernel which sockets are ready and then calling recv() and send() on each (epoll: a
// recv and a send per message, and the epoll_wait that found it), the loop hands the kernel requests — "accept on lfd,
// again and again", "receive on cfd into one of these buffers, again and again", "send these
// bytes" — and reaps their completions; one io_uring_enter submits every request of a turn and
// collects every completion that came meanwhile.
//
//   prepare()       io_uring_setup (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them, 6.1;
//   (Node's thread) else COOP_TASKRUN, 5.19), io_uring_register(PBUF_RING): the receive buffers
//                   lent to the kernel; lfd non-blocking
//   server thread   enable the ring (its only submitter from now on); one multishot accept on lfd
//                   loop { io_uring_enter(submit what this turn queued, wait for ≥ 1 completion)
//                          for each completion:
//                            accept → cfd: the door, a slot, a multishot receive on cfd
//                            receive → the bytes are copied into the connection's input, the
//                                      buffer goes back to the kernel
//                            send → what the kernel sent
//                          for each connection with something new: the handler's steps
//                            (connection.cc: serve_readable / serve_writable, the same steps as
//                            epoll's); a reply is a send request
//                          drop the connections past a deadline of their ServePolicy }
//
// The steps are epoll's (connection.h), driven through a StepIo: their recv() takes from what the
// receives brought; their send() queues a send request and says EAGAIN until it completes, then
// reports what the kernel sent — a short send keeps the rest, exactly as with a non-blocking
// socket. At most one send per connection is in flight, so bytes leave in order.
//
// Receives: one multishot receive per connection (6.0) stays armed and completes once per arrival
// into a provided buffer; on kernels before 6.1 (or with uringReceive 'single') a single-shot
// receive is armed each time the connection waits to read, after its reply has gone ("one recv
// then one send in flight"). Either way the bytes are copied into the connection's own input at
// once and the buffer is lent again: a client that stops reading holds no shared buffer.
//
// Backpressure: a multishot receive keeps receiving while the connection's reply waits for a
// client that does not read. Once the input holds one step's read (16 KiB) that the steps cannot
// take, the receive is cancelled (IORING_OP_ASYNC_CANCEL), and armed again once they took it: the
// server's memory per client stays at its input — the read that filled it, and what the kernel
// had already delivered in the same turn — and the other clients are served meanwhile.
//
// A connection ends only once the kernel holds none of its requests: a request keeps its socket
// alive (and its buffer in use) even after close(). So an end with requests in flight cancels
// them by descriptor (IORING_ASYNC_CANCEL_FD | ALL) and closes cfd when the last completion is in.
// Each request's user_data carries the slot and a generation, so a completion is never taken for
// a later connection of the same slot.
//
// Time limits, the door, maxClients, the EMFILE reserve and close() are epoll's: the deadline
// lists (deadline_lists.h) give io_uring_enter its timeout; out of descriptors with no client
// pending, the listener is polled before the accept is armed again (arm_listener_poll); close()'s
// shutdown(lfd) ends the multishot accept (its completion carries the error), the loop closes lfd
// and serves the live connections until they end.
//
// whenFull 'wait' (room_gate.h): the accept is single-shot, armed again only while a slot is free
// — a multishot accept may complete several clients in one turn, more than the slots left — so
// while maxClients connections are live nothing is accepted and the next clients wait in the listen
// backlog, until a connection ends (finish_conn). Meanwhile a poll of lfd for its hang-up alone stays
// armed, so that stop()'s shutdown(lfd) is still seen and close() frees the port at once (epoll's
// listener watched for nothing still reports EPOLLHUP).
//
// The peer's address: a multishot accept has one address buffer for all its completions, so the
// loop asks getpeername() instead — only when something needs it (a listener of 'connection', the
// door's address rules, the trace, a refusal's record).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

#include "../accept_guard.h"
#include "../clock.h"
#include "../deadline_lists.h"
#include "../eintr.h"
#include "../in_process_server.h"
#include "../io_ring.h"

namespace ps {

#if PS_HAVE_IO_URING

namespace {

constexpr uint16_t kBufferGroup = 0;
constexpr uint32_t kListenerIndex = 0xFFFFFF;  // the listener's requests; a connection's is its slot index
constexpr uint32_t kHangupGen =
    1;  // the listener's poll for its hang-up (whenFull 'wait'), told from arm_listener_poll's

// What a request is, in its user_data: op << 56 | index << 32 | generation.
enum class Op : uint8_t { Accept = 1, Recv = 2, Send = 3, Cancel = 4, Poll = 5 };

uint64_t tag(Op op, uint32_t index, uint32_t gen) {
  return (static_cast<uint64_t>(op) << 56) | (static_cast<uint64_t>(index & 0xFFFFFF) << 32) | gen;
}

// The trace's words for a request armed (uring-arm) and a completion (uring-cqe): event_record.h.
constexpr int kArmAccept = 1;
constexpr int kArmRecvMultishot = 2;
constexpr int kArmRecvSingle = 3;
constexpr int kArmListenerPoll = 4;
constexpr int kArmAcceptSingle = 5;
constexpr int kArmListenerHangup = 6;
constexpr int kCancelBackpressure = 1;
constexpr int kCancelEnd = 2;

unsigned pow2_at_least(unsigned n) {
  unsigned p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

class UringServer final : public InProcessServer {
 public:
  explicit UringServer(const ServerOptions& options)
      : InProcessServer(options, options.maxClients),
        conns_(new Conn[options.maxClients]),
        deadlines_(options.serve),
        shape_(service_shape(options.serve.handler)),
        multishot_accept_(options.whenFull != WhenFull::Wait) {
    for (int i = 0; i < options.maxClients; ++i) {
      conns_[i].server = this;
      conns_[i].index = static_cast<uint32_t>(i);
    }
  }
  ~UringServer() override { shut_down_now(); }  // the server thread uses conns_ and ring_
  using InProcessServer::launch;

 private:
  enum class SendState : uint8_t { Idle, InFlight, Done };

  // One live connection, at its slot's index. The steps' StepIo (connection.h).
  struct Conn final : StepIo {
    UringServer* server = nullptr;
    uint32_t index = 0;
    uint32_t gen = 0;      // this slot's connection count: in every request's user_data
    Slot* slot = nullptr;  // nullptr: free
    // The steps' buffer and what the client has not taken yet, allocated the first time the slot
    // serves and kept for its next connections (as epoll's).
    std::unique_ptr<PendingOutput> out;
    ServeStep waiting = ServeStep::Again;
    ConnectionLimits limits{ServePolicy{}};
    DeadlineLink<Conn> idle, life, rate;
    // What the receives brought and the steps have not taken: in[in_start, in_start + in_len).
    std::unique_ptr<char[]> in;
    size_t in_cap = 0;
    size_t in_start = 0;
    size_t in_len = 0;
    bool eof = false;  // a receive completed with 0 (after the bytes above)
    int recv_err = 0;  // or with this error
    // The requests of this connection in the kernel, and their state.
    unsigned inflight = 0;    // requests whose last completion has not come
    bool recv_armed = false;  // a receive is in flight (multishot: until a completion without MORE)
    bool recv_cancelling = false;
    int recv_ended = 0;         // why the last receive ended (for the trace of the re-arm)
    bool recv_started = false;  // a receive was armed before (a new arm is a re-arm)
    SendState send_state = SendState::Idle;
    const char* send_ptr = nullptr;
    size_t send_len = 0;
    int32_t send_res = 0;  // Done: bytes sent, or -errno
    bool ending = false;
    DisconnectReason end_reason = DisconnectReason::End;
    bool queued = false;  // on the ready list
    Conn* next_ready = nullptr;

    bool has_input() const { return in_len > 0 || eof || recv_err != 0; }

    ssize_t recv(char* buf, size_t n) override {
      if (in_len > 0) {
        size_t k = std::min(n, in_len);
        memcpy(buf, in.get() + in_start, k);
        in_start += k;
        in_len -= k;
        if (in_len == 0) in_start = 0;
        return static_cast<ssize_t>(k);
      }
      if (recv_err != 0) {
        errno = recv_err;
        return -1;
      }
      if (eof) return 0;
      errno = EAGAIN;
      return -1;
    }

    ssize_t send(const char* buf, size_t n) override {
      if (send_state == SendState::Done) {
        // The steps ask again for exactly what they asked before (their output does not move
        // until a send reports bytes): that request's answer.
        assert(buf == send_ptr && n == send_len);
        send_state = SendState::Idle;
        if (send_res < 0) {
          errno = -send_res;
          return -1;
        }
        return send_res;
      }
      if (send_state == SendState::Idle && !server->submit_send(*this, buf, n)) {
        errno = EBUSY;  // no room in the submission queue even after submitting: give up on it
        return -1;
      }
      errno = EAGAIN;
      return -1;
    }
  };

  SysError prepare() override {
    const unsigned slots = static_cast<unsigned>(options_.maxClients);
    // Room to queue a request per connection and turn without submitting midway; completions for
    // several per connection (NODROP keeps any beyond that in the kernel, never lost).
    const unsigned sq = pow2_at_least(std::min(2 * slots + 16, 4096u));
    SysError err = ring_.open(sq, 4 * sq, /*deferred=*/true);
    events_.trace(TraceCall::UringSetup, ring_.is_open() ? ring_.setup_flags() : -1, ring_.fd(), err.err);
    if (err) return err;
    multishot_ = ring_.mode() == RingMode::Deferred && options_.multishotReceive;
    // A buffer per connection at least: every receive of a turn has one, and each goes back at once.
    const unsigned buffers = std::min(pow2_at_least(std::max(slots, 64u)), 4096u);
    err = ring_.provide_buffers(buffers, PendingOutput::kSize, kBufferGroup);
    events_.trace(TraceCall::UringReg, ring_.fd(), (static_cast<int64_t>(buffers) << 8) | IORING_REGISTER_PBUF_RING,
                  err.err);
    if (err) return err;
    // close-conn's record: the ring, above bit 32 (event_record.h): cfd is closed once the ring
    // holds none of its requests.
    close_conn_result_ = static_cast<int64_t>(ring_.fd()) << 32;
    // Non-blocking: the EMFILE reserve trick accepts and refuses with accept4() itself (as epoll).
    int flags = fcntl(lfd_.get(), F_GETFL);
    if (flags < 0 || fcntl(lfd_.get(), F_SETFL, flags | O_NONBLOCK) != 0) return {errno, "fcntl"};
    return {};
  }

  void accept_loop() override {
    Counters& c = page_->counters;
    SysError err = ring_.enable();
    if (ring_.mode() == RingMode::Deferred) {
      events_.trace(TraceCall::UringReg, ring_.fd(), IORING_REGISTER_ENABLE_RINGS, err.err);
    }
    if (err) {
      fail_accept(err.err);
      listening_ = false;
    } else {
      arm_accept();
    }
    while (listening_ || live_ > 0 || accept_armed_) {
      ring_.publish_buffers();
      const bool busy = ready_head_ != nullptr;
      int rc =
          retry_eintr(c.eintrRetries, [&] { return ring_.enter(busy ? 0 : 1, true, busy ? 0 : next_timeout_ms()); });
      if (rc < 0 && errno != ETIME && errno != EAGAIN && errno != EBUSY) {
        // Only a bug can get here (EBADF, EFAULT, EEXIST from another thread): report it, end all.
        int e = errno;
        events_.trace(TraceCall::UringEnter, ring_.fd(), -1, e);
        if (listening_) fail_accept(e);
        abandon_all();
        break;
      }
      const unsigned n = ring_.ready();
      const unsigned submitted = rc > 0 ? static_cast<unsigned>(rc) : 0;
      if (events_.tracing && (submitted > 0 || n > 0)) {
        events_.trace(TraceCall::UringEnter, ring_.fd(), (static_cast<int64_t>(n) << 32) | submitted);
      }
      if (options_.serve.timed() || paused_) now_ms_ = monotonic_ms();
      for (unsigned i = 0; i < n; ++i) {
        const io_uring_cqe* cqe = ring_.completion(i);
        complete(cqe->user_data, cqe->res, cqe->flags);
      }
      ring_.consume(n);
      run_ready();
      if (paused_ && now_ms_ >= resume_ms_) resume_accept();
      deadlines_.expire(now_ms_, [this](Conn& conn, DisconnectReason reason) { end(conn, reason); });
    }
    ring_.close();
  }

  // -1 (sleep until a completion), or the time to the nearest deadline or the end of an accept pause.
  int next_timeout_ms() { return wait_ms_until(std::min(paused_ ? resume_ms_ : INT64_MAX, deadlines_.next())); }

  // An SQE, submitting what is queued first if the submission queue is full (nullptr: even that
  // did not make room).
  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = ring_.next_sqe();
    if (sqe != nullptr) return sqe;
    ring_.publish_buffers();
    int rc = retry_eintr(page_->counters.eintrRetries, [&] { return ring_.enter(0, false, -1); });
    if (rc > 0) events_.trace(TraceCall::UringEnter, ring_.fd(), rc);
    return ring_.next_sqe();
  }

  // ---- The listener ----

  // The accept: multishot, or single-shot with whenFull 'wait' (then recorded at its first arm and
  // when a full server accepts again, not at each client's re-arm).
  void arm_accept() {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return pause_accept();
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = lfd_.get();
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    sqe->ioprio = multishot_accept_ ? IORING_ACCEPT_MULTISHOT : 0;
    sqe->user_data = tag(Op::Accept, kListenerIndex, 0);
    accept_armed_ = true;
    if (multishot_accept_ || !accept_started_ || was_full_) {
      events_.trace(TraceCall::UringArm, lfd_.get(),
                    (multishot_accept_ ? kArmAccept : kArmAcceptSingle) | (accept_started_ ? 0x100 : 0), accept_ended_);
    }
    accept_started_ = true;
    was_full_ = false;
  }

  // Out of descriptors with nothing pending (the reserve's accept4 said EAGAIN): an accept armed now
  // would fail again at once — it takes a descriptor before it looks for a client, so io_uring
  // completes it with EMFILE whether a client waits or not — and the loop would spin. Wait instead
  // until a client is there (POLLIN; also POLLHUP at stop), as epoll's level-triggered listener does.
  void arm_listener_poll() {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return pause_accept();
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = lfd_.get();
    sqe->poll32_events = POLLIN;
    sqe->user_data = tag(Op::Poll, kListenerIndex, 0);
    accept_armed_ = true;
    events_.trace(TraceCall::UringArm, lfd_.get(), kArmListenerPoll, accept_ended_);
  }

  // A client is pending (or stop() shut the listener down): the accept again.
  void on_listener_poll() {
    accept_armed_ = false;
    rearm_accept();
  }

  // whenFull 'wait', full: lfd watched for its hang-up alone (an empty mask: io_uring's poll always
  // reports POLLHUP and POLLERR), which stop()'s shutdown(lfd) raises. Armed once; it stays.
  void arm_listener_hangup() {
    if (hangup_armed_) return;
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return pause_accept();  // the pause's end looks again (rearm_accept)
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = lfd_.get();
    sqe->poll32_events = 0;
    sqe->user_data = tag(Op::Poll, kListenerIndex, kHangupGen);
    hangup_armed_ = true;
    events_.trace(TraceCall::UringArm, lfd_.get(), kArmListenerHangup);
  }

  void on_listener_hangup() {
    hangup_armed_ = false;
    if (close_listener_if_stopping()) {
      listening_ = false;
      return;
    }
    if (listening_ && full_) arm_listener_hangup();  // not the stop (it cannot be otherwise): again
  }

  // Out of memory or descriptors with no reserve: take no connection for a moment rather than have
  // the accept fail again at once. stop() is noticed when the pause ends.
  void pause_accept() {
    paused_ = true;
    resume_ms_ = monotonic_ms() + kAcceptPauseMs;
  }

  void resume_accept() {
    paused_ = false;
    rearm_accept();
  }

  // The listener's next request, unless the server is stopping (then lfd is closed: the port is
  // free) or, with whenFull 'wait', full (then none until a connection ends: finish_conn()).
  void rearm_accept() {
    if (!listening_) return;
    if (close_listener_if_stopping()) {
      listening_ = false;
      return;
    }
    if (!multishot_accept_ && !slots_.has_free()) {
      full_ = was_full_ = true;
      arm_listener_hangup();
      return;
    }
    arm_accept();
  }

  void on_accept(int32_t res, uint32_t flags) {
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) accept_armed_ = false;
    if (res >= 0) {
      admit(res);
    } else {
      const int err = -res;
      accept_ended_ = err;
      if (close_listener_if_stopping()) {  // stop(): shutdown(lfd) ended the accept (EINVAL)
        listening_ = false;
        return;
      }
      Counters& c = page_->counters;
      int reserve = reserve_fd_.release();
      AcceptVerdict verdict = handle_accept_failure_nonblocking(err, lfd_.get(), reserve, c, events_);
      reserve_fd_.reset(reserve);
      if (verdict == AcceptVerdict::Pause) {
        if (!accept_armed_) pause_accept();
        return;
      }
      if (verdict == AcceptVerdict::Drained) {
        if (!accept_armed_) arm_listener_poll();
        return;
      }
      if (verdict == AcceptVerdict::Fatal) {
        fail_accept(err);
        listening_ = false;
        return;
      }
    }
    // The multishot accept ended (an error, or a completion the CQ had no room for): again.
    if (!accept_armed_ && !paused_) rearm_accept();
  }

  bool need_peer() const {
    return events_.tracing || door_.active() || page_->events.connections_heard.load(std::memory_order_relaxed) != 0;
  }

  static void peer_of(int cfd, sockaddr_storage& peer) {
    socklen_t len = sizeof peer;
    if (getpeername(cfd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) peer = sockaddr_storage{};
  }

  // A client the multishot accept took: count it, the door, a slot, its first steps.
  void admit(int cfd) {
    sockaddr_storage peer{};
    bool have_peer = need_peer();
    if (have_peer) peer_of(cfd, peer);
    uint32_t id = record_accept(cfd, peer);
    int32_t door_ticket = -1;
    if (!pass_the_door(cfd, peer, id, door_ticket)) return;  // refused at the door: closed, reported
    Slot* slot = slots_.claim(cfd, peer, id, door_ticket);
    if (slot == nullptr) {  // maxClients live: refuse
      if (!have_peer) peer_of(cfd, peer);
      reject(cfd, peer, id, door_ticket, RejectReason::MaxClients, 0);
      return;
    }
    begin_connection(slot, -1);
    ++live_;
    Conn& conn = conns_[slots_.index_of(slot)];
    assert(conn.slot == nullptr && conn.inflight == 0);
    conn.slot = slot;
    ++conn.gen;
    conn.waiting = ServeStep::Again;
    conn.in_start = conn.in_len = 0;
    conn.eof = false;
    conn.recv_err = 0;
    conn.recv_armed = conn.recv_cancelling = conn.recv_started = false;
    conn.recv_ended = 0;
    conn.send_state = SendState::Idle;
    conn.ending = false;
    deadlines_.start(conn, now_ms_);
    if (!prepare_buffers(conn)) return;
    // What the handler does first: daytime and time send their message, chargen its stream.
    DisconnectReason reason = DisconnectReason::End;
    Counters& c = page_->counters;
    StepSocket sock{cfd, &conn};
    after(conn, serve_begin(sock, options_.serve, c, slot->bytes, *conn.out, conn.limits, reason), reason, 0);
  }

  // The slot's buffers, allocated the first time it serves (false: out of memory, the connection
  // is ended).
  bool prepare_buffers(Conn& conn) {
    if (!conn.out) conn.out.reset(new (std::nothrow) PendingOutput);
    if (!conn.in && conn.out) {
      conn.in.reset(new (std::nothrow) char[PendingOutput::kSize]);
      conn.in_cap = conn.in ? PendingOutput::kSize : 0;
    }
    if (conn.out && conn.in) return true;
    end(conn, DisconnectReason::Error);
    return false;
  }

  // ---- Completions ----

  void complete(uint64_t user_data, int32_t res, uint32_t flags) {
    const Op op = static_cast<Op>(user_data >> 56);
    const uint32_t index = static_cast<uint32_t>(user_data >> 32) & 0xFFFFFF;
    if (op == Op::Accept || op == Op::Poll) {
      events_.trace(TraceCall::UringCqe, lfd_.get(), cqe_word(op, res, flags));
      if (op == Op::Accept)
        on_accept(res, flags);
      else if (static_cast<uint32_t>(user_data) == kHangupGen)
        on_listener_hangup();
      else
        on_listener_poll();
      return;
    }
    assert(index < static_cast<uint32_t>(options_.maxClients));
    Conn& conn = conns_[index];
    // A connection ends only when none of its requests is left, so every completion is its own.
    assert(conn.slot != nullptr && conn.gen == static_cast<uint32_t>(user_data));
    if (events_.tracing) events_.trace(TraceCall::UringCqe, conn.slot->cfd, cqe_word(op, res, flags), 0, conn.slot->id);
    const bool last = (flags & IORING_CQE_F_MORE) == 0;
    if (last) {
      assert(conn.inflight > 0);
      --conn.inflight;
    }
    switch (op) {
      case Op::Recv:
        on_receive(conn, res, flags, last);
        break;
      case Op::Send:
        if (res == -EAGAIN && !conn.ending) {  // not sent, not failed: ask again
          conn.send_state = SendState::Idle;
          submit_send(conn, conn.send_ptr, conn.send_len);
          break;
        }
        conn.send_state = SendState::Done;
        conn.send_res = res;
        break;
      case Op::Cancel:
      case Op::Accept:
      case Op::Poll:
        break;
    }
    if (conn.ending) {
      if (conn.slot != nullptr && conn.inflight == 0) finish_conn(conn);
      return;
    }
    mark_ready(conn);
  }

  // The trace's result of a completion: op << 40 | MORE << 32 | the result (32 bits).
  static int64_t cqe_word(Op op, int32_t res, uint32_t flags) {
    return (static_cast<int64_t>(op) << 40) | (static_cast<int64_t>((flags & IORING_CQE_F_MORE) != 0) << 32) |
           static_cast<uint32_t>(res);
  }

  void on_receive(Conn& conn, int32_t res, uint32_t flags, bool last) {
    if (last) {
      conn.recv_armed = false;
      conn.recv_cancelling = false;
      conn.recv_ended = res < 0 ? -res : 0;
    }
    if (res > 0) {
      assert(flags & IORING_CQE_F_BUFFER);
      const uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      const bool kept = conn.ending || append_input(conn, ring_.buffer(bid), static_cast<size_t>(res));
      ring_.recycle(bid);
      if (!kept) end(conn, DisconnectReason::Error);  // out of memory
      return;
    }
    if (res == 0) {
      conn.eof = true;
    } else if (res != -ENOBUFS && res != -ECANCELED) {
      // ENOBUFS: every buffer was taken this turn (they are back now: armed again); ECANCELED: ours.
      conn.recv_err = -res;
    }
  }

  // Appends n received bytes to the connection's input (growing it: what the kernel delivered
  // before a cancel took effect is kept, never dropped). False: out of memory.
  static bool append_input(Conn& conn, const char* data, size_t n) {
    if (conn.in_start + conn.in_len + n > conn.in_cap) {
      if (conn.in_len + n <= conn.in_cap) {
        memmove(conn.in.get(), conn.in.get() + conn.in_start, conn.in_len);
      } else {
        size_t cap = std::max(2 * conn.in_cap, conn.in_len + n);
        std::unique_ptr<char[]> bigger(new (std::nothrow) char[cap]);
        if (!bigger) return false;
        memcpy(bigger.get(), conn.in.get() + conn.in_start, conn.in_len);
        conn.in = std::move(bigger);
        conn.in_cap = cap;
      }
      conn.in_start = 0;
    }
    memcpy(conn.in.get() + conn.in_start + conn.in_len, data, n);
    conn.in_len += n;
    return true;
  }

  // ---- The steps ----

  void mark_ready(Conn& conn) {
    if (conn.queued) return;
    conn.queued = true;
    conn.next_ready = ready_head_;
    ready_head_ = &conn;
  }

  // Each connection with something new gets its steps once per turn.
  void run_ready() {
    Conn* list = ready_head_;
    ready_head_ = nullptr;
    while (list != nullptr) {
      Conn& conn = *list;
      list = conn.next_ready;
      conn.queued = false;
      if (conn.slot != nullptr && !conn.ending) service(conn);
    }
  }

  // The steps as far as they can go now: what a completed send means, then one read of the input
  // (one per turn, as epoll's one recv per wake-up: a client that sends a lot starves nobody).
  void service(Conn& conn) {
    // Nothing for the steps until the send completes (the receive may have to stop meanwhile).
    if (conn.send_state == SendState::InFlight) return manage_receive(conn);
    Slot* slot = conn.slot;
    const uint64_t moved =
        slot->bytes.in.load(std::memory_order_relaxed) + slot->bytes.out.load(std::memory_order_relaxed);
    Counters& c = page_->counters;
    const ServePolicy& policy = options_.serve;
    StepSocket sock{slot->cfd, &conn};
    DisconnectReason reason = DisconnectReason::End;
    ServeStep next = conn.waiting;
    if (conn.waiting == ServeStep::Pending) {
      next = serve_writable(sock, policy, c, slot->bytes, *conn.out, conn.limits, reason);
    } else if (conn.waiting == ServeStep::Again) {
      if (!conn.has_input()) return manage_receive(conn);
      next = serve_readable(sock, policy, c, slot->bytes, *conn.out, conn.limits, reason);
    } else {  // Stream (chargen): the client's bytes (or EOF), then as much of the stream as fits
      if (conn.has_input()) next = serve_readable(sock, policy, c, slot->bytes, *conn.out, conn.limits, reason);
      while (next == ServeStep::Stream && conn.send_state != SendState::InFlight) {
        next = serve_writable(sock, policy, c, slot->bytes, *conn.out, conn.limits, reason);
      }
    }
    after(conn, next, reason, moved);
  }

  // After a step: end the connection (EOF with its output all out, an error, a greeting sent), or
  // note what it waits for. Bytes moved count as activity for the idle limit.
  void after(Conn& conn, ServeStep next, DisconnectReason reason, uint64_t moved) {
    if (next == ServeStep::Done) return end(conn, reason);
    Slot* slot = conn.slot;
    if (slot->bytes.in.load(std::memory_order_relaxed) + slot->bytes.out.load(std::memory_order_relaxed) != moved) {
      deadlines_.touch(conn, now_ms_);
    }
    conn.waiting = next;
    // Pending always leaves a send in flight; only a stream may have none (a short send: the next
    // turn asks for more).
    assert(next != ServeStep::Pending || conn.send_state == SendState::InFlight);
    if (conn.send_state != SendState::InFlight && conn.has_input()) mark_ready(conn);
    if (next == ServeStep::Stream && conn.send_state == SendState::Idle) mark_ready(conn);
    manage_receive(conn);
  }

  // Whether the connection should be receiving: armed when the steps can use what comes,
  // cancelled when its input holds a read they cannot take (backpressure).
  void manage_receive(Conn& conn) {
    if (!shape_.reads || conn.ending || conn.eof || conn.recv_err != 0) return;
    if (conn.recv_armed) {
      if (multishot_ && !conn.recv_cancelling && conn.in_len >= PendingOutput::kSize) {
        cancel(conn, kCancelBackpressure, tag(Op::Recv, conn.index, conn.gen));
        conn.recv_cancelling = true;
      }
      return;
    }
    // Single-shot: only when the reply is out ("one recv then one send in flight"), and the input
    // is empty. Multishot: whenever the input has room.
    const bool want =
        multishot_ ? conn.in_len < PendingOutput::kSize : conn.in_len == 0 && conn.waiting != ServeStep::Pending;
    if (want) arm_receive(conn);
  }

  void arm_receive(Conn& conn) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return end(conn, DisconnectReason::Error);
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = conn.slot->cfd;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    sqe->ioprio = multishot_ ? IORING_RECV_MULTISHOT : 0;
    sqe->user_data = tag(Op::Recv, conn.index, conn.gen);
    ++conn.inflight;
    conn.recv_armed = true;
    if (multishot_ || !conn.recv_started) {  // a single-shot re-arm per message is not worth a record
      events_.trace(TraceCall::UringArm, conn.slot->cfd,
                    (multishot_ ? kArmRecvMultishot : kArmRecvSingle) | (conn.recv_started ? 0x100 : 0),
                    conn.recv_ended, conn.slot->id);
    }
    conn.recv_started = true;
  }

  bool submit_send(Conn& conn, const char* buf, size_t n) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = conn.slot->cfd;
    sqe->addr = reinterpret_cast<uint64_t>(buf);
    sqe->len = static_cast<uint32_t>(n);
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = tag(Op::Send, conn.index, conn.gen);
    ++conn.inflight;
    conn.send_state = SendState::InFlight;
    conn.send_ptr = buf;
    conn.send_len = n;
    return true;
  }

  // Cancels `target` (a request's user_data), or with target 0 every request on the connection's
  // descriptor.
  void cancel(Conn& conn, int why, uint64_t target) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return;  // its request completes some other way (EOF, an error, close())
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    if (target != 0) {
      sqe->addr = target;
    } else {
      sqe->fd = conn.slot->cfd;
      sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    }
    sqe->user_data = tag(Op::Cancel, conn.index, conn.gen);
    ++conn.inflight;
    events_.trace(TraceCall::UringCancel, conn.slot->cfd, why, 0, conn.slot->id);
  }

  // ---- The end of a connection ----

  // Ends it now if the kernel holds none of its requests, else cancels them and ends it when the
  // last completion is in (finish_conn).
  void end(Conn& conn, DisconnectReason reason) {
    if (conn.ending) return;
    conn.ending = true;
    conn.end_reason = reason;
    deadlines_.remove(conn);
    if (conn.inflight == 0) return finish_conn(conn);
    cancel(conn, kCancelEnd, 0);
  }

  // close(cfd) (in end_connection): nothing of the ring refers to it any more.
  void finish_conn(Conn& conn) {
    assert(conn.ending && conn.inflight == 0);
    Slot* slot = conn.slot;
    conn.slot = nullptr;
    conn.in_start = conn.in_len = 0;
    if (conn.in_cap > PendingOutput::kSize) {  // a burst grew it: back to one read
      conn.in.reset(new (std::nothrow) char[PendingOutput::kSize]);
      conn.in_cap = conn.in ? PendingOutput::kSize : 0;
    }
    --live_;
    end_connection(slot, conn.end_reason, -1);
    if (full_) {  // whenFull 'wait': a slot is free, the accept again
      full_ = false;
      if (!accept_armed_ && !paused_) rearm_accept();
    }
  }

  // io_uring_enter failed for good: close the ring (the kernel cancels everything in it), then end
  // every connection at once.
  void abandon_all() {
    ring_.close();
    accept_armed_ = false;
    listening_ = false;
    for (int i = 0; i < slots_.capacity(); ++i) {
      Conn& conn = conns_[i];
      if (conn.slot == nullptr) continue;
      if (!conn.ending) deadlines_.remove(conn);
      conn.ending = true;
      if (conn.end_reason == DisconnectReason::End) conn.end_reason = DisconnectReason::Error;
      conn.inflight = 0;
      finish_conn(conn);
    }
  }

  IoRing ring_;
  std::unique_ptr<Conn[]> conns_;
  ConnectionDeadlines<Conn> deadlines_;
  const ServiceShape shape_;
  bool multishot_ = true;
  const bool multishot_accept_;  // false: whenFull 'wait'
  Conn* ready_head_ = nullptr;
  int live_ = 0;               // connections with a Conn (ending ones included)
  bool listening_ = true;      // lfd is open
  bool accept_armed_ = false;  // the accept (or arm_listener_poll's poll) is in the kernel
  bool accept_started_ = false;
  int accept_ended_ = 0;       // why it ended last (for the trace of the re-arm)
  bool full_ = false;          // whenFull 'wait': no accept armed until a connection ends
  bool was_full_ = false;      // the next arm of the accept is the first since the server was full
  bool hangup_armed_ = false;  // arm_listener_hangup's poll is in the kernel
  bool paused_ = false;        // no accept until resume_ms_
  int64_t resume_ms_ = 0;
  int64_t now_ms_ = 0;  // when the last io_uring_enter returned (kept only with a limit or a pause)
};

std::unique_ptr<Server> start_uring_server(const ServerOptions& options, SysError& error) {
  return launch_in_process<UringServer>(options, error);
}

#else  // !PS_HAVE_IO_URING

// Built without <linux/io_uring.h> of Linux 6.1 or later: the model is there, and refuses.
std::unique_ptr<Server> start_uring_server(const ServerOptions&, SysError& error) {
  error = {ENOSYS, "io_uring_setup"};
  return nullptr;
}

#endif

}  // namespace ps
