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

constexpr int64_t kNever = INT64_MAX;

// The time limits of one connection (ServePolicy) as deadlines on the monotonic clock. The idle
// limit is not here: it is measured from the start of each wait (wait_for).
struct Limits {
  int64_t life_end = kNever;    // maxConnectionMs after the start
  int64_t window_end = kNever;  // the end of the current rate window
  uint64_t window_need = 0;     // bytes the client must send within each window
  uint64_t window_got = 0;      // bytes it sent in the current one
  int64_t window_ms = 0;

  explicit Limits(const ServePolicy& p) {
    const int64_t start = monotonic_ms();
    if (p.maxConnectionMs > 0) life_end = start + p.maxConnectionMs;
    if (p.minBytesPerSecond > 0) {
      window_ms = p.rateWindowMs;
      window_end = start + window_ms;
      window_need = (static_cast<uint64_t>(p.minBytesPerSecond) * static_cast<uint64_t>(window_ms) + 999) / 1000;
    }
  }

  // Checks the limits at `now`: End when none is reached, else the reason to drop the client.
  // A window that is over starts the next one, from now.
  DisconnectReason check(int64_t now) {
    if (now >= life_end) return DisconnectReason::Lifetime;
    if (now >= window_end) {
      if (window_got < window_need) return DisconnectReason::Slow;
      window_got = 0;
      window_end = now + window_ms;
    }
    return DisconnectReason::End;
  }
};

// Waits until cfd is ready for `events` (POLLIN, POLLOUT, or both), within the limits. Returns End
// when it is (or poll failed: the recv/send that follows reports the error), with what it is
// ready for in `revents` if asked, else the reason to drop the client: Idle after idle_ms without
// readiness, Lifetime, or Slow. EINTR resumes the wait with the time that is left, so signals
// cannot stretch a limit.
DisconnectReason wait_for(int cfd, short events, int idle_ms, Limits& limits, Counters& counters,
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
DisconnectReason send_all(int cfd, const char* data, size_t n, const ServePolicy& policy, Limits* limits,
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
    counters.bytesOut.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
    bytes.out.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
  }
  return DisconnectReason::End;
}

// echo, upper, discard: read; answer (echo, upper) or throw away (discard); until EOF.
DisconnectReason serve_reads(int cfd, const ServePolicy& policy, bool replies, Limits* limits, Counters& counters,
                             ConnBytes& bytes) {
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
    counters.bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    bytes.in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    if (limits != nullptr) limits->window_got += static_cast<uint64_t>(n);
    if (!replies) continue;
    apply_handler(policy.handler, buf, static_cast<size_t>(n));
    DisconnectReason why = send_all(cfd, buf, static_cast<size_t>(n), policy, limits, counters, bytes);
    if (why != DisconnectReason::End) return why;
  }
}

// chargen: keep the socket's send buffer full; read (and throw away) whatever the client sends,
// so that its EOF ends the stream. Neither send nor recv blocks: one poll waits for both.
DisconnectReason serve_stream(int cfd, const ServePolicy& policy, Limits* limits, Counters& counters,
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
        counters.bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        bytes.in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      }
    }
    if (ready & POLLOUT) {
      chargen_fill(cursor, buf, sizeof buf);
      ssize_t sent =
          retry_eintr(counters.eintrRetries, [&] { return send(cfd, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT); });
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return DisconnectReason::Error;
      if (sent > 0) {
        cursor.advance(static_cast<size_t>(sent));
        counters.bytesOut.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
        bytes.out.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
        // What the client took is what keeps it from being slow: it sends nothing we keep.
        if (limits != nullptr) limits->window_got += static_cast<uint64_t>(sent);
      }
    }
  }
}

// daytime, time: the message, then shut down the write side (the client reads EOF after it).
DisconnectReason serve_greeting(int cfd, const ServePolicy& policy, Limits* limits, Counters& counters,
                                ConnBytes& bytes) {
  char message[kGreetingMax];
  size_t n = service_greeting(policy.handler, message, sizeof message);
  DisconnectReason why = send_all(cfd, message, n, policy, limits, counters, bytes);
  if (why != DisconnectReason::End) return why;
  shutdown(cfd, SHUT_WR);
  return DisconnectReason::End;
}

}  // namespace

bool is_crash_message(const ServePolicy& policy, const char* data, size_t n) {
  return policy.labCrash && n == sizeof kCrashMessage - 1 && memcmp(data, kCrashMessage, n) == 0;
}

DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes) {
  Limits timed_limits(policy);
  Limits* limits = policy.timed() ? &timed_limits : nullptr;
  const ServiceShape shape = service_shape(policy.handler);
  if (shape.greets) return serve_greeting(cfd, policy, limits, counters, bytes);
  if (shape.streams) return serve_stream(cfd, policy, limits, counters, bytes);
  if (shape.reads) return serve_reads(cfd, policy, shape.replies, limits, counters, bytes);
  return DisconnectReason::Error;  // Exec: the child became the program (exec_child.h), never here
}

}  // namespace ps
