#include "connection.h"

#include <cstddef>
#include <sys/socket.h>

#include "eintr.h"

namespace ps {

namespace {

void to_upper_ascii(char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = static_cast<char>(data[i] - 'a' + 'A');
  }
}

// Writes all n bytes, resuming after short writes.
bool send_all(int cfd, const char* data, size_t n, Counters& counters, ConnBytes& bytes) {
  while (n > 0) {
    ssize_t sent = retry_eintr(counters.eintrRetries, [&] { return send(cfd, data, n, MSG_NOSIGNAL); });
    if (sent < 0) return false;
    data += sent;
    n -= static_cast<size_t>(sent);
    counters.bytesOut.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
    bytes.out.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
  }
  return true;
}

}  // namespace

DisconnectReason serve_connection(int cfd, Handler handler, Counters& counters, ConnBytes& bytes) {
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = retry_eintr(counters.eintrRetries, [&] { return recv(cfd, buf, sizeof buf, 0); });
    if (n == 0) return DisconnectReason::End;
    if (n < 0) return DisconnectReason::Error;
    counters.bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    bytes.in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    if (handler == Handler::Upper) to_upper_ascii(buf, static_cast<size_t>(n));
    if (!send_all(cfd, buf, static_cast<size_t>(n), counters, bytes)) return DisconnectReason::Error;
  }
}

}  // namespace ps
