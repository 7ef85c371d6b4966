// How events travel from a server (the fork master, a worker thread, …) to JavaScript.
//
// Each event is one fixed-size record written with a single write() to a pipe whose write end is
// O_NONBLOCK. Writes of at most PIPE_BUF bytes are atomic, so records from many writers never
// interleave; write() is async-signal-safe, so the fork master may emit from its SIGCHLD handler.
// Node reads the other end through a net.Socket (libuv polls it; no thread-pool thread is pinned).
// When the pipe is full the record is dropped and counted: a server never stalls on its observer.
//
// The record itself, the wire format shared with JavaScript, is in event_record.h.
#pragma once

#include <sys/socket.h>
#include <cstdint>

#include "clock.h"
#include "event_record.h"
#include "shared_page.h"
#include "unique_fd.h"

namespace ps {

static_assert(kMaxClientsLimit <= INT16_MAX && kMaxWorkers <= INT16_MAX,
              "slot and worker fit the record's int16 fields");

// Creates the pipe: both ends close-on-exec, the write end non-blocking. Returns false with errno.
bool create_event_pipe(UniqueFd& read_end, UniqueFd& write_end);

// The write side. Copyable on purpose: a forked master or child holds its own copy.
struct EventPipe {
  int write_fd = -1;
  Counters* counters = nullptr;
  bool tracing = false;  // the `trace` option: record syscalls too

  // Stamps the time (unless the record carries one already) and writes the record; on a full pipe
  // counts it as dropped.
  // Async-signal-safe (clock_gettime and write are on the signal-safety(7) list).
  void emit(EventRecord rec) const;

  // A connection refused: counts it in `rejected` and writes the Reject record. Async-signal-safe.
  void reject(const sockaddr_storage& peer, uint32_t id, RejectReason reason, int err) const;

  // A Trace record of the calling process (getpid is async-signal-safe), if tracing. `worker`: the
  // calling pool member's index (pool models), else -1.
  void trace(TraceCall call, int64_t fd, int64_t result, int err = 0, uint32_t id = 0, int32_t slot = -1,
             const sockaddr_storage* peer = nullptr, uint64_t time_ns = 0, int32_t worker = -1) const;
};

}  // namespace ps
