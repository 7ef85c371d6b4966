// How events travel from a server (the fork master, a child, a worker thread, …) to JavaScript.
//
// Each event is one fixed-size record (event_record.h, the wire format shared with JavaScript),
// published into the ring in the shared page (event_ring.h): no system call, no wake-up of Node.
// A thread of Node's process drains the ring on a short timer while events flow (event_drain.h).
// The pipe is still there, for two things a ring cannot do: it is the doorbell (one byte, written
// only when that thread has parked), and its write end is held by every process and thread of
// the server, so its EOF in Node means that every writer is gone and every event is in the ring.
// When the ring is full the record is dropped and counted: a server never stalls on its observer
// (the drain thread keeps the ring from filling while Node lives: a drop means a wedged Node).
#pragma once

#include <sys/socket.h>
#include <cstdint>

#include "clock.h"
#include "event_record.h"
#include "shared_page.h"
#include "unique_fd.h"

namespace ps {

// Creates the pipe: both ends close-on-exec, the write end non-blocking (a doorbell never blocks:
// one unread byte is as good as many). Returns false with errno.
bool create_event_pipe(UniqueFd& read_end, UniqueFd& write_end);

// The write side. Copyable on purpose: a forked master or child holds its own copy.
struct EventPipe {
  EventPipe() = default;
  EventPipe(int write_fd, SharedPage* page, bool tracing)
      : write_fd(write_fd), counters(&page->counters), ring(&page->events), tracing(tracing) {}

  int write_fd = -1;  // the pipe: doorbell and lifetime
  Counters* counters = nullptr;
  EventRing* ring = nullptr;
  bool tracing = false;  // the `trace` option: record syscalls too

  // Stamps the time (unless the record carries one already) and publishes the record; on a full
  // ring counts it as dropped and returns false; rings the doorbell if Node has parked.
  // Async-signal-safe (clock_gettime, atomics and write are on the signal-safety(7) list).
  bool emit(EventRecord rec) const;

  // A Connection record, written only while a listener would hear it (EventRing::connections_heard).
  // Returns whether it was published — not when nobody listens, and not when the ring was full
  // and it was dropped: the connection's Disconnect record is written if and only if this was
  // published, so that Node's books (which connections it announced) stay true whatever listens when,
  // and a listener never hears of a connection's end without having been able to hear of its
  // start. Nobody listening, an accepted connection costs no record and no ring cell: under churn
  // the two records were a twentieth of a pool member's CPU and all the hosting Node did per
  // connection.
  // Async-signal-safe.
  bool announce_connection(const EventRecord& rec) const;

  // A connection refused: counts it in `rejected` and writes the Reject record. Async-signal-safe.
  void reject(const sockaddr_storage& peer, uint32_t id, RejectReason reason, int err) const;

  // A Trace record of the calling process (getpid is async-signal-safe), if tracing.
  void trace(TraceCall call, int64_t fd, int64_t result, int err = 0, uint32_t id = 0, int32_t slot = -1,
             const sockaddr_storage* peer = nullptr, uint64_t time_ns = 0) const;
};

}  // namespace ps
