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

bool is_crash_message(const ServePolicy& policy, const char* data, size_t n) {
  return policy.labCrash && n == sizeof kCrashMessage - 1 && memcmp(data, kCrashMessage, sizeof kCrashMessage - 1) == 0;
}

void count_out(Counters& counters, ConnBytes& bytes, size_t n) {
  counters.bytesOut.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  bytes.out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

void count_in(Counters& counters, ConnBytes& bytes, size_t n) {
  counters.bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  bytes.in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

// Waits until cfd is ready for `events` (POLLIN or POLLOUT), within the limits. Returns End when
// it is (or poll failed: the recv/send that follows reports the error), else the reason to drop
// the client: Idle after idle_ms without readiness, Lifetime, or Slow. EINTR resumes the wait
// with the time that is left, so signals cannot stretch a limit.
DisconnectReason wait_for(int cfd, short events, int idle_ms, ConnectionLimits& limits, Counters& counters) {
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
    if (rc != 0) return DisconnectReason::End;  // ready, EOF, or an error (recv/send tells which)
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

}  // namespace

void apply_handler(Handler handler, char* data, size_t n) {
  if (handler != Handler::Upper) return;  // echo: the bytes go back as they came
  for (size_t i = 0; i < n; ++i) {
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = static_cast<char>(data[i] - 'a' + 'A');
  }
}

ConnectionLimits::ConnectionLimits(const ServePolicy& p) {
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
    apply_handler(policy.handler, buf, static_cast<size_t>(n));
    DisconnectReason why = send_all(cfd, buf, static_cast<size_t>(n), policy, limits, counters, bytes);
    if (why != DisconnectReason::End) return why;
  }
}

EchoStep echo_writable(int cfd, Counters& counters, ConnBytes& bytes, PendingEcho& pending, DisconnectReason& reason) {
  while (pending.length > 0) {
    ssize_t sent = retry_eintr(counters.eintrRetries,
                               [&] { return send(cfd, pending.data + pending.offset, pending.length, MSG_NOSIGNAL); });
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return EchoStep::Pending;
      reason = DisconnectReason::Error;
      return EchoStep::Done;
    }
    pending.offset += static_cast<size_t>(sent);
    pending.length -= static_cast<size_t>(sent);
    count_out(counters, bytes, static_cast<size_t>(sent));
  }
  return EchoStep::Again;
}

EchoStep echo_readable(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes, PendingEcho& pending,
                       ConnectionLimits& limits, DisconnectReason& reason) {
  ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recv(cfd, pending.data, PendingEcho::kSize, 0); });
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return EchoStep::Again;
  if (n <= 0) {
    reason = n == 0 ? DisconnectReason::End : DisconnectReason::Error;
    return EchoStep::Done;
  }
  if (is_crash_message(policy, pending.data, static_cast<size_t>(n))) {
    reason = DisconnectReason::Crash;
    return EchoStep::Done;
  }
  count_in(counters, bytes, static_cast<size_t>(n));
  limits.window_got += static_cast<uint64_t>(n);
  apply_handler(policy.handler, pending.data, static_cast<size_t>(n));
  pending.offset = 0;
  pending.length = static_cast<size_t>(n);
  return echo_writable(cfd, counters, bytes, pending, reason);
}

}  // namespace ps
