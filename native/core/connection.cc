#include "connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "clock.h"
#include "eintr.h"

namespace ps {

namespace {

void to_upper_ascii(char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = static_cast<char>(data[i] - 'a' + 'A');
  }
}

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

// Writes all n bytes, resuming after short writes.
bool send_all(int cfd, const char* data, size_t n, Counters& counters, ConnBytes& bytes) {
  while (n > 0) {
    ssize_t sent = retry_eintr(counters.eintrRetries, [&] { return send(cfd, data, n, MSG_NOSIGNAL); });
    if (sent < 0) return false;
    data += sent;
    n -= static_cast<size_t>(sent);
    count_out(counters, bytes, static_cast<size_t>(sent));
  }
  return true;
}

// Waits until cfd is readable or idle_ms passed with nothing to read. EINTR resumes the wait with
// the time that is left, so signals cannot stretch the timeout.
bool wait_readable(int cfd, int idle_ms, Counters& counters) {
  const int64_t deadline = monotonic_ms() + idle_ms;
  pollfd p{cfd, POLLIN, 0};
  int rc = retry_eintr(counters.eintrRetries, [&] {
    int64_t left = deadline - monotonic_ms();
    return left <= 0 ? 0 : poll(&p, 1, static_cast<int>(left));
  });
  return rc != 0;  // readable, EOF or an error (recv() tells which); 0: the time is up
}

}  // namespace

DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes) {
  if (policy.idleTimeoutMs > 0) {
    // A client that stops reading makes our send() block; SO_SNDTIMEO bounds that wait (it then
    // fails with EAGAIN, reported as idle).
    timeval tv{policy.idleTimeoutMs / 1000, static_cast<suseconds_t>((policy.idleTimeoutMs % 1000) * 1000)};
    setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  char buf[16 * 1024];
  for (;;) {
    if (policy.idleTimeoutMs > 0 && !wait_readable(cfd, policy.idleTimeoutMs, counters)) return DisconnectReason::Idle;
    ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recv(cfd, buf, sizeof buf, 0); });
    if (n == 0) return DisconnectReason::End;
    if (n < 0) return DisconnectReason::Error;
    if (is_crash_message(policy, buf, static_cast<size_t>(n))) return DisconnectReason::Crash;
    count_in(counters, bytes, static_cast<size_t>(n));
    if (policy.handler == Handler::Upper) to_upper_ascii(buf, static_cast<size_t>(n));
    if (!send_all(cfd, buf, static_cast<size_t>(n), counters, bytes)) {
      return errno == EAGAIN || errno == EWOULDBLOCK ? DisconnectReason::Idle : DisconnectReason::Error;
    }
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
                       DisconnectReason& reason) {
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
  if (policy.handler == Handler::Upper) to_upper_ascii(pending.data, static_cast<size_t>(n));
  pending.offset = 0;
  pending.length = static_cast<size_t>(n);
  return echo_writable(cfd, counters, bytes, pending, reason);
}

}  // namespace ps
