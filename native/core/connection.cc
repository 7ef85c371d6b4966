#include "connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>

#include "clock.h"
#include "eintr.h"

namespace ps {

namespace {

constexpr int64_t kNever = ConnectionLimits::kNever;

void count_out(Counters& counters, ConnBytes& bytes, size_t n) {
  counters.bytesOut.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  bytes.out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

void count_in(Counters& counters, ConnBytes& bytes, size_t n) {
  counters.bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  bytes.in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

// Waits until cfd is ready for `events` (POLLIN, POLLOUT, or both), within the limits. Returns End
// when it is (or poll failed: the recv/send that follows reports the error), with what it is
// ready for in `revents` if asked, else the reason to drop the client: Idle after idle_ms without
// readiness, Lifetime, or Slow. EINTR resumes the wait with the time that is left, so signals
// cannot stretch a limit.
DisconnectReason wait_for(int cfd, short events, int idle_ms, ConnectionLimits& limits, Counters& counters,
                          short* revents = nullptr) {
  const int64_t idle_end = idle_ms > 0 ? monotonic_ms() + idle_ms : kNever;
  pollfd p{cfd, events, 0};
  for (;;) {
    int64_t now = monotonic_ms();
    DisconnectReason why = limits.check(now);
    if (why != DisconnectReason::End) return why;
    if (now >= idle_end) return DisconnectReason::Idle;
    int rc = retry_eintr(counters.eintrRetries, [&] {
      int64_t wake = std::min({idle_end, limits.life_end, limits.window_end});
      int64_t left = wake == kNever ? -1 : std::clamp<int64_t>(wake - monotonic_ms(), 0, INT_MAX);
      return poll(&p, 1, static_cast<int>(left));
    });
    if (rc != 0) {  // ready, EOF, or an error (recv/send tells which)
      if (revents != nullptr) *revents = rc > 0 ? p.revents : static_cast<short>(events);
      return DisconnectReason::End;
    }
    // 0: a deadline came; the loop tells which.
  }
}

// Writes all n bytes, resuming after short writes. Untimed (limits == nullptr): send() blocks as
// long as it takes. Timed: send() never blocks; a full socket buffer is waited for with
// wait_for(), so a client that stops reading meets the idle, lifetime and rate limits. Returns
// End when everything was written, else why not (Error: `errno` says what failed).
DisconnectReason send_all(int cfd, const char* data, size_t n, const ServePolicy& policy, ConnectionLimits* limits,
                          Counters& counters, ConnBytes& bytes) {
  const int flags = MSG_NOSIGNAL | (limits != nullptr ? MSG_DONTWAIT : 0);
  while (n > 0) {
    ssize_t sent = retry_eintr(counters.eintrRetries, [&] { return send(cfd, data, n, flags); });
    if (sent < 0) {
      if (limits == nullptr || (errno != EAGAIN && errno != EWOULDBLOCK)) return DisconnectReason::Error;
      DisconnectReason why = wait_for(cfd, POLLOUT, policy.idleTimeoutMs, *limits, counters);
      if (why != DisconnectReason::End) return why;
      continue;
    }
    data += sent;
    n -= static_cast<size_t>(sent);
    count_out(counters, bytes, static_cast<size_t>(sent));
  }
  return DisconnectReason::End;
}

// echo, upper, discard: read; answer (echo, upper) or throw away (discard); until EOF.
DisconnectReason serve_reads(int cfd, const ServePolicy& policy, bool replies, ConnectionLimits* limits,
                             Counters& counters, ConnBytes& bytes) {
  char buf[16 * 1024];
  for (;;) {
    if (limits != nullptr) {
      DisconnectReason why = wait_for(cfd, POLLIN, policy.idleTimeoutMs, *limits, counters);
      if (why != DisconnectReason::End) return why;
    }
    ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recv(cfd, buf, sizeof buf, 0); });
    if (n == 0) return DisconnectReason::End;
    if (n < 0) return DisconnectReason::Error;
    if (is_crash_message(policy, buf, static_cast<size_t>(n))) return DisconnectReason::Crash;
    count_in(counters, bytes, static_cast<size_t>(n));
    if (limits != nullptr) limits->window_got += static_cast<uint64_t>(n);
    if (!replies) continue;
    apply_handler(policy.handler, buf, static_cast<size_t>(n));
    DisconnectReason why = send_all(cfd, buf, static_cast<size_t>(n), policy, limits, counters, bytes);
    if (why != DisconnectReason::End) return why;
  }
}

// chargen: keep the socket's send buffer full; read (and throw away) whatever the client sends,
// so that its EOF ends the stream. Neither send nor recv blocks: one poll waits for both.
DisconnectReason serve_stream(int cfd, const ServePolicy& policy, ConnectionLimits* limits, Counters& counters,
                              ConnBytes& bytes) {
  char buf[16 * 1024];
  ChargenCursor cursor;
  for (;;) {
    short ready = 0;
    if (limits != nullptr) {
      DisconnectReason why = wait_for(cfd, POLLIN | POLLOUT, policy.idleTimeoutMs, *limits, counters, &ready);
      if (why != DisconnectReason::End) return why;
    } else {
      pollfd p{cfd, POLLIN | POLLOUT, 0};
      int rc = retry_eintr(counters.eintrRetries, [&] { return poll(&p, 1, -1); });
      ready = rc > 0 ? p.revents : static_cast<short>(POLLIN | POLLOUT);
    }
    if (ready & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recv(cfd, buf, sizeof buf, MSG_DONTWAIT); });
      if (n == 0) return DisconnectReason::End;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return DisconnectReason::Error;
      if (n > 0) {
        if (is_crash_message(policy, buf, static_cast<size_t>(n))) return DisconnectReason::Crash;
        count_in(counters, bytes, static_cast<size_t>(n));
      }
    }
    if (ready & POLLOUT) {
      chargen_fill(cursor, buf, sizeof buf);
      ssize_t sent =
          retry_eintr(counters.eintrRetries, [&] { return send(cfd, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT); });
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return DisconnectReason::Error;
      if (sent > 0) {
        cursor.advance(static_cast<size_t>(sent));
        count_out(counters, bytes, static_cast<size_t>(sent));
        // What the client took is what keeps it from being slow: it sends nothing we keep.
        if (limits != nullptr) limits->window_got += static_cast<uint64_t>(sent);
      }
    }
  }
}

// daytime, time: the message, then shut down the write side (the client reads EOF after it).
DisconnectReason serve_greeting(int cfd, const ServePolicy& policy, ConnectionLimits* limits, Counters& counters,
                                ConnBytes& bytes) {
  char message[kGreetingMax];
  size_t n = service_greeting(policy.handler, message, sizeof message);
  DisconnectReason why = send_all(cfd, message, n, policy, limits, counters, bytes);
  if (why != DisconnectReason::End) return why;
  shutdown(cfd, SHUT_WR);
  return DisconnectReason::End;
}

// rpc: one reply, `size` bytes of chargen's stream from its start.
DisconnectReason send_reply_blocking(int cfd, uint32_t size, char* buf, size_t cap, const ServePolicy& policy,
                                     ConnectionLimits* limits, Counters& counters, ConnBytes& bytes) {
  ChargenCursor cursor;
  size_t left = size;
  while (left > 0) {
    const size_t chunk = left < cap ? left : cap;
    chargen_fill(cursor, buf, chunk);
    DisconnectReason why = send_all(cfd, buf, chunk, policy, limits, counters, bytes);
    if (why != DisconnectReason::End) return why;
    cursor.advance(chunk);
    left -= chunk;
    // What the client took keeps it from being slow while it reads the reply.
    if (limits != nullptr) limits->window_got += static_cast<uint64_t>(chunk);
  }
  return DisconnectReason::End;
}

// rpc, as UNP's web_child(): read a line, send the size it names, again, until the client's EOF
// (the caller's close() then ends the connection: the client has closed first, so the TIME_WAIT
// is its own). What one recv() brings may hold several lines (pipelined requests): each is
// answered in turn before the next recv(). A refused line ends the connection at once (service.h).
DisconnectReason serve_rpc(int cfd, const ServePolicy& policy, ConnectionLimits* limits, Counters& counters,
                           ConnBytes& bytes) {
  char in[kRpcInputMax];
  char buf[16 * 1024];
  size_t at = 0, length = 0;
  RpcRequest request;
  for (;;) {
    if (at == length) {
      if (limits != nullptr) {
        DisconnectReason why = wait_for(cfd, POLLIN, policy.idleTimeoutMs, *limits, counters);
        if (why != DisconnectReason::End) return why;
      }
      ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recv(cfd, in, sizeof in, 0); });
      if (n < 0) return DisconnectReason::Error;
      if (n == 0) {
        // EOF between lines: the client is done. Within one: UNP's readline() returns the line as
        // it is, and web_child() answers it.
        if (request.length == 0) return DisconnectReason::End;
        if (request.end_of_input() != RpcRequest::Status::Ready) return DisconnectReason::Error;
        return send_reply_blocking(cfd, request.reply, buf, sizeof buf, policy, limits, counters, bytes);
      }
      if (is_crash_message(policy, in, static_cast<size_t>(n))) return DisconnectReason::Crash;
      count_in(counters, bytes, static_cast<size_t>(n));
      if (limits != nullptr) limits->window_got += static_cast<uint64_t>(n);
      at = 0;
      length = static_cast<size_t>(n);
    }
    size_t used = 0;
    RpcRequest::Status status = request.feed(in + at, length - at, policy.rpcMaxBytes, used);
    at += used;
    if (status == RpcRequest::Status::Refused) return DisconnectReason::Error;
    if (status == RpcRequest::Status::Ready) {
      DisconnectReason why = send_reply_blocking(cfd, request.reply, buf, sizeof buf, policy, limits, counters, bytes);
      if (why != DisconnectReason::End) return why;
      request = RpcRequest{};
    }
  }
}

}  // namespace

bool is_crash_message(const ServePolicy& policy, const char* data, size_t n) {
  return policy.labCrash && n == sizeof kCrashMessage - 1 && memcmp(data, kCrashMessage, n) == 0;
}

ConnectionLimits::ConnectionLimits(const ServePolicy& p) {
  // No limit, no clock: a fork child that reads the time faults in the vDSO's pages first
  // (BENCHMARKS.md, "Where the fork master's time goes").
  if (p.maxConnectionMs <= 0 && p.minBytesPerSecond <= 0) return;
  const int64_t start = monotonic_ms();
  if (p.maxConnectionMs > 0) life_end = start + p.maxConnectionMs;
  if (p.minBytesPerSecond > 0) {
    window_ms = p.rateWindowMs;
    window_end = start + window_ms;
    window_need = (static_cast<uint64_t>(p.minBytesPerSecond) * static_cast<uint64_t>(window_ms) + 999) / 1000;
  }
}

DisconnectReason ConnectionLimits::check(int64_t now) {
  if (now >= life_end) return DisconnectReason::Lifetime;
  if (now >= window_end) {
    if (window_got < window_need) return DisconnectReason::Slow;
    window_got = 0;
    window_end = now + window_ms;
  }
  return DisconnectReason::End;
}

DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes) {
  ConnectionLimits timed_limits(policy);
  ConnectionLimits* limits = policy.timed() ? &timed_limits : nullptr;
  const ServiceShape shape = service_shape(policy.handler);
  if (shape.greets) return serve_greeting(cfd, policy, limits, counters, bytes);
  if (shape.streams) return serve_stream(cfd, policy, limits, counters, bytes);
  if (shape.sized) return serve_rpc(cfd, policy, limits, counters, bytes);
  if (shape.reads) return serve_reads(cfd, policy, shape.replies, limits, counters, bytes);
  return DisconnectReason::Error;  // Exec: the child became the program (exec_child.h), never here
}

// ---- The event-loop form ----

namespace {

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK; }

// The steps' recv() and send(): the socket's own, or a completion loop's stand-ins (StepIo).
ssize_t step_recv(StepSocket cfd, char* buf, size_t n) {
  return cfd.io != nullptr ? cfd.io->recv(buf, n) : recv(cfd.fd, buf, n, 0);
}

ssize_t step_send(StepSocket cfd, const char* buf, size_t n) {
  return cfd.io != nullptr ? cfd.io->send(buf, n) : send(cfd.fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// One non-blocking send() of what `out` holds: what the kernel took leaves `out` and is counted.
// Returns what send() returned (-1 with errno when it took nothing).
ssize_t send_some(StepSocket cfd, Counters& counters, ConnBytes& bytes, PendingOutput& out) {
  ssize_t sent = retry_eintr(counters.eintrRetries, [&] { return step_send(cfd, out.data + out.offset, out.length); });
  if (sent > 0) {
    out.offset += static_cast<size_t>(sent);
    out.length -= static_cast<size_t>(sent);
    count_out(counters, bytes, static_cast<size_t>(sent));
  }
  return sent;
}

// Sends what is pending, non-blocking. Again when all of it is out (a greeting: then the write
// side is shut down and the connection is Done), Pending when the socket is full.
ServeStep send_pending(StepSocket cfd, Counters& counters, ConnBytes& bytes, PendingOutput& out,
                       DisconnectReason& reason) {
  while (out.length > 0) {
    if (send_some(cfd, counters, bytes, out) < 0) {
      if (would_block()) return ServeStep::Pending;
      reason = DisconnectReason::Error;
      return ServeStep::Done;
    }
  }
  if (out.close_when_sent) {
    shutdown(cfd.fd, SHUT_WR);
    reason = DisconnectReason::End;
    return ServeStep::Done;
  }
  return ServeStep::Again;
}

// chargen: the stream from the cursor, until the socket is full.
ServeStep send_stream(StepSocket cfd, Counters& counters, ConnBytes& bytes, PendingOutput& out,
                      ConnectionLimits& limits, DisconnectReason& reason) {
  for (;;) {
    chargen_fill(out.cursor, out.data, PendingOutput::kSize);
    ssize_t sent = retry_eintr(counters.eintrRetries, [&] { return step_send(cfd, out.data, PendingOutput::kSize); });
    if (sent < 0) {
      if (would_block()) return ServeStep::Stream;
      reason = DisconnectReason::Error;
      return ServeStep::Done;
    }
    out.cursor.advance(static_cast<size_t>(sent));
    count_out(counters, bytes, static_cast<size_t>(sent));
    limits.window_got += static_cast<uint64_t>(sent);  // what the client took (it sends nothing we keep)
    if (static_cast<size_t>(sent) < PendingOutput::kSize) return ServeStep::Stream;
  }
}

// rpc: the reply in flight, a PendingOutput at a time from chargen's stream, until the socket is
// full (Pending) or all of it is out (Again).
ServeStep send_reply(StepSocket cfd, Counters& counters, ConnBytes& bytes, PendingOutput& out, ConnectionLimits& limits,
                     DisconnectReason& reason) {
  for (;;) {
    if (out.length == 0) {
      if (out.reply_left == 0) return ServeStep::Again;
      const size_t chunk = out.reply_left < PendingOutput::kSize ? out.reply_left : PendingOutput::kSize;
      chargen_fill(out.cursor, out.data, chunk);
      out.cursor.advance(chunk);
      out.offset = 0;
      out.length = chunk;
      out.reply_left -= chunk;
    }
    ssize_t sent = send_some(cfd, counters, bytes, out);
    if (sent < 0) {
      if (would_block()) return ServeStep::Pending;
      reason = DisconnectReason::Error;
      return ServeStep::Done;
    }
    limits.window_got += static_cast<uint64_t>(sent);  // what the client took keeps it from being slow
  }
}

// rpc: the reply in flight, then every request line already read, each answered in turn (as the
// blocking serve_rpc). Again once nothing whole is left to answer (wait until readable); Pending
// when the socket is full mid-reply; Done when a line is refused, or after the last reply once the
// client's EOF has been read (the loop's close() ends the connection: the client closed first).
ServeStep answer_requests(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                          PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason) {
  for (;;) {
    ServeStep step = send_reply(cfd, counters, bytes, out, limits, reason);
    if (step != ServeStep::Again) return step;
    RpcRequest::Status status = RpcRequest::Status::More;
    if (out.input_at < out.input_length) {
      size_t used = 0;
      status = out.request.feed(out.input + out.input_at, out.input_length - out.input_at, policy.rpcMaxBytes, used);
      out.input_at += used;
    } else if (out.input_ended) {
      // Between lines the client is done; within one, UNP's readline() returns the line as it is.
      if (out.request.length == 0) {
        reason = DisconnectReason::End;
        return ServeStep::Done;
      }
      status = out.request.end_of_input();  // Ready resets the request: next time round, the end
    } else {
      return ServeStep::Again;
    }
    if (status == RpcRequest::Status::Refused) {
      reason = DisconnectReason::Error;
      return ServeStep::Done;
    }
    if (status == RpcRequest::Status::Ready) {
      out.reply_left = out.request.reply;
      out.cursor = ChargenCursor{};
      out.offset = 0;
      out.length = 0;
      out.request = RpcRequest{};
    }
  }
}

// rpc, readable: one recv() of request lines (only when every line read before is answered), then
// the answers.
ServeStep read_request(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                       PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason) {
  ssize_t n = retry_eintr(counters.eintrRetries, [&] { return step_recv(cfd, out.input, sizeof out.input); });
  if (n < 0 && would_block()) return ServeStep::Again;
  if (n < 0) {
    reason = DisconnectReason::Error;
    return ServeStep::Done;
  }
  out.input_at = 0;
  out.input_length = 0;
  if (n == 0) {
    out.input_ended = true;
    return answer_requests(cfd, policy, counters, bytes, out, limits, reason);
  }
  if (is_crash_message(policy, out.input, static_cast<size_t>(n))) {
    reason = DisconnectReason::Crash;
    return ServeStep::Done;
  }
  count_in(counters, bytes, static_cast<size_t>(n));
  limits.window_got += static_cast<uint64_t>(n);
  out.input_length = static_cast<size_t>(n);
  return answer_requests(cfd, policy, counters, bytes, out, limits, reason);
}

}  // namespace

ServeStep serve_begin(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                      PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason) {
  out.offset = 0;
  out.length = 0;
  out.close_when_sent = false;
  out.cursor = ChargenCursor{};
  out.request = RpcRequest{};
  out.reply_left = 0;
  out.input_at = 0;
  out.input_length = 0;
  out.input_ended = false;
  const ServiceShape shape = service_shape(policy.handler);
  if (shape.greets) {
    out.length = service_greeting(policy.handler, out.data, PendingOutput::kSize);
    out.close_when_sent = true;
    return send_pending(cfd, counters, bytes, out, reason);
  }
  if (shape.streams) return send_stream(cfd, counters, bytes, out, limits, reason);
  return ServeStep::Again;
}

ServeStep serve_readable(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                         PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason) {
  const ServiceShape shape = service_shape(policy.handler);
  if (shape.sized) return read_request(cfd, policy, counters, bytes, out, limits, reason);
  const ServeStep waiting = shape.streams ? ServeStep::Stream : ServeStep::Again;
  ssize_t n = retry_eintr(counters.eintrRetries, [&] { return step_recv(cfd, out.data, PendingOutput::kSize); });
  if (n < 0 && would_block()) return waiting;
  if (n <= 0) {
    reason = n == 0 ? DisconnectReason::End : DisconnectReason::Error;
    return ServeStep::Done;
  }
  if (is_crash_message(policy, out.data, static_cast<size_t>(n))) {
    reason = DisconnectReason::Crash;
    return ServeStep::Done;
  }
  count_in(counters, bytes, static_cast<size_t>(n));
  if (!shape.streams) limits.window_got += static_cast<uint64_t>(n);
  if (!shape.replies) return waiting;  // discard, chargen: thrown away
  apply_handler(policy.handler, out.data, static_cast<size_t>(n));
  out.offset = 0;
  out.length = static_cast<size_t>(n);
  return send_pending(cfd, counters, bytes, out, reason);
}

ServeStep serve_writable(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                         PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason) {
  const ServiceShape shape = service_shape(policy.handler);
  if (shape.streams) return send_stream(cfd, counters, bytes, out, limits, reason);
  if (shape.sized) return answer_requests(cfd, policy, counters, bytes, out, limits, reason);
  return send_pending(cfd, counters, bytes, out, reason);
}

}  // namespace ps
