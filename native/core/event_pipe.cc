#include "event_pipe.h"

#include <fcntl.h>
#include <unistd.h>
#include <cassert>

#include "clock.h"
#include "eintr.h"

namespace ps {

bool create_event_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  int flags = fcntl(fds[1], F_GETFL);
  if (flags < 0 || fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) != 0) return false;
  return true;
}

bool EventPipe::emit(EventRecord rec) const {
  if (rec.timeNs == 0) rec.timeNs = monotonic_ns();
  bool ring_doorbell = false;
  if (!ring->publish(rec, ring_doorbell)) {
    counters->eventsDropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (ring_doorbell) {
    counters->eventWakeups.fetch_add(1, std::memory_order_relaxed);
    const char bell = 1;
    ssize_t ignored = retry_eintr(counters->eintrRetries, [&] { return write(write_fd, &bell, 1); });
    (void)ignored;  // EAGAIN: the pipe is full of doorbell bytes, Node is awake anyway
  }
  return true;
}

bool EventPipe::announce_connection(const EventRecord& rec) const {
  assert(rec.type == static_cast<uint8_t>(EventType::Connection));
  if (ring->connections_heard.load(std::memory_order_relaxed) == 0) return false;
  return emit(rec);
}

void EventPipe::reject(const sockaddr_storage& peer, uint32_t id, RejectReason reason, int err) const {
  counters->rejected.fetch_add(1);
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Reject);
  rec.id = id;
  rec.code = static_cast<int32_t>(reason);
  rec.detail = err;
  set_peer(rec, peer);
  emit(rec);
}

void EventPipe::trace(TraceCall call, int64_t fd, int64_t result, int err, uint32_t id, int32_t slot,
                      const sockaddr_storage* peer, uint64_t time_ns) const {
  if (!tracing) return;
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Trace);
  rec.code = static_cast<int32_t>(call);
  rec.pid = getpid();
  rec.id = id;
  rec.slot = slot;
  rec.detail = err;
  rec.fd = fd;
  rec.result = result;
  rec.timeNs = time_ns;
  if (peer != nullptr) set_peer(rec, *peer);
  emit(rec);
}

}  // namespace ps
