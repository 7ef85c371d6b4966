#include "accept_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>

#include "eintr.h"

namespace ps {

int open_reserve_fd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

namespace {

bool is_client_error(int err) {
  switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

// Gives up the reserve descriptor, accepts one pending connection and closes it at once (the
// client sees EOF instead of hanging), counts and reports it, takes the reserve back. False when
// nothing was pending (a non-blocking listener said EAGAIN).
bool refuse_one_with_reserve(int lfd, int& reserve_fd, Counters& counters, const EventPipe& events,
                             Counter* member_accepts) {
  close(reserve_fd);
  reserve_fd = -1;
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  int cfd = accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  if (cfd >= 0) {
    uint32_t id = static_cast<uint32_t>(counters.accepted.fetch_add(1) + 1);
    if (member_accepts != nullptr) member_accepts->fetch_add(1);
    counters.refusedNoFd.fetch_add(1);
    events.reject(peer, id, RejectReason::NoFd, EMFILE);
    close(cfd);  // after the Reject record (door.h: refused clients are heard in order)
  }
  reserve_fd = open_reserve_fd();
  return cfd >= 0;
}

// Out of descriptors: refuse the pending connection with the reserve descriptor's slot.
void refuse_without_fd(int lfd, int& reserve_fd, Counters& counters, const EventPipe& events, Counter* member_accepts,
                       int pending_wait_ms) {
  if (reserve_fd < 0) {
    poll(nullptr, 0, 10);  // no reserve (could not be reopened yet): at least do not spin
    reserve_fd = open_reserve_fd();
    return;
  }
  // Linux's accept() reserves the new descriptor before it looks for a connection, so EMFILE comes
  // back at once even with nothing pending. Then wait (bounded) for a connection, and let accept()
  // try again: descriptors may have been freed meanwhile, and that client deserves to be served.
  // shutdown() of the listener at stop wakes this poll too.
  pollfd pending{lfd, POLLIN, 0};
  if (poll(&pending, 1, 0) != 1) {
    if (pending_wait_ms > 0) poll(&pending, 1, pending_wait_ms);
    return;
  }
  refuse_one_with_reserve(lfd, reserve_fd, counters, events, member_accepts);
}

}  // namespace

int accept_client(int lfd, sockaddr_storage& peer, Counters& counters, const EventPipe& events, int extra_flags) {
  return retry_eintr(
      counters.eintrRetries,
      [&] {
        socklen_t len = sizeof peer;
        return accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC | extra_flags);
      },
      [&] { events.trace(TraceCall::AcceptEintr, lfd, -1, EINTR); });
}

AcceptVerdict handle_accept_failure(int err, int lfd, int& reserve_fd, Counters& counters, const EventPipe& events,
                                    Counter* member_accepts, int pending_wait_ms) {
  if (err == EMFILE || err == ENFILE) {
    refuse_without_fd(lfd, reserve_fd, counters, events, member_accepts, pending_wait_ms);
    return AcceptVerdict::Retry;
  }
  if (is_client_error(err)) {
    counters.acceptErrors.fetch_add(1);
    return AcceptVerdict::Retry;
  }
  if (err == ENOBUFS || err == ENOMEM) {
    poll(nullptr, 0, 10);
    return AcceptVerdict::Retry;
  }
  return AcceptVerdict::Fatal;
}

AcceptVerdict handle_accept_failure_nonblocking(int err, int lfd, int& reserve_fd, Counters& counters,
                                                const EventPipe& events) {
  if (err == EAGAIN || err == EWOULDBLOCK) return AcceptVerdict::Drained;
  if (err == EMFILE || err == ENFILE) {
    if (reserve_fd < 0) {
      reserve_fd = open_reserve_fd();
      return reserve_fd < 0 ? AcceptVerdict::Pause : AcceptVerdict::Retry;
    }
    // EMFILE says nothing about whether a client is pending (see above): the non-blocking accept
    // with the reserve's slot tells. Nothing pending: back to epoll_wait, which reports the
    // listener again only when a client arrives (level-triggered), so this never spins.
    if (!refuse_one_with_reserve(lfd, reserve_fd, counters, events, nullptr)) return AcceptVerdict::Drained;
    return reserve_fd < 0 ? AcceptVerdict::Pause : AcceptVerdict::Retry;
  }
  if (is_client_error(err)) {
    counters.acceptErrors.fetch_add(1);
    return AcceptVerdict::Retry;
  }
  if (err == ENOBUFS || err == ENOMEM) return AcceptVerdict::Pause;
  return AcceptVerdict::Fatal;
}

}  // namespace ps
