// How events travel from a server (the fork master, a worker thread, …) to JavaScript.
//
// Each event is one fixed-size record written with a single write() to a pipe whose write end is
// O_NONBLOCK. Writes of at most PIPE_BUF bytes are atomic, so records from many writers never
// interleave; write() is async-signal-safe, so the fork master may emit from its SIGCHLD handler.
// Node reads the other end through a net.Socket (libuv polls it; no thread-pool thread is pinned).
// When the pipe is full the record is dropped and counted: a server never stalls on its observer.
//
// The layout is mirrored by lib/events.ts (decodeEvents); change both together.
#pragma once

#include <cstdint>
#include <limits.h>
#include <sys/socket.h>

#include "shared_page.h"
#include "unique_fd.h"

namespace ps {

enum class EventType : uint8_t {
  Connection = 1,
  Disconnect = 2,
  Reject = 3,
  Reap = 4,
  Error = 5,
  Listening = 6,  // the server (fork: the master, set up) is in its accept loop
};

enum class DisconnectReason : int32_t {
  End = 0,      // the client closed its side (read returned 0)
  Error = 1,    // read/write failed (ECONNRESET, EPIPE, …)
  Aborted = 2,  // the server ended it while closing (timeout reached)
};

enum class RejectReason : int32_t {
  MaxClients = 0,  // fork: live children; thread: slot table full
  NoThread = 1,    // thread: pthread_create failed
  NoProcess = 2,   // fork: fork failed
};

#pragma pack(push, 1)
struct EventRecord {
  uint8_t type = 0;     // EventType
  uint8_t family = 0;   // 4 or 6 (0: no peer)
  uint16_t port = 0;    // peer port, host byte order
  uint32_t id = 0;      // connection id (1, 2, … in accept order)
  int32_t pid = 0;      // fork: child pid
  int32_t slot = -1;    // thread: slot index
  int32_t code = 0;     // Disconnect: reason; Reject: reason; Reap: exit code (-1 if signalled); Error: errno
  int32_t detail = 0;   // Reap: terminating signal (0 if exited); Reject: errno of a failed fork/pthread_create
  uint64_t bytesIn = 0;
  uint64_t bytesOut = 0;
  uint8_t addr[16] = {};  // peer address, network byte order (4 bytes used for IPv4)
  uint64_t timeNs = 0;    // CLOCK_MONOTONIC when the event happened
};
#pragma pack(pop)

constexpr int kEventRecordSize = 64;
static_assert(sizeof(EventRecord) == kEventRecordSize, "record layout is shared with lib/events.ts");
static_assert(sizeof(EventRecord) <= PIPE_BUF, "records must be written atomically");

// Fills family/port/addr from an accept()ed peer address. Async-signal-safe.
void set_peer(EventRecord& rec, const sockaddr_storage& peer);

// Creates the pipe: both ends close-on-exec, the write end non-blocking. Returns false with errno.
bool create_event_pipe(UniqueFd& read_end, UniqueFd& write_end);

// The write side. Copyable on purpose: a forked master or child holds its own copy.
struct EventPipe {
  int write_fd = -1;
  Counters* counters = nullptr;

  // Stamps the time and writes the record; on a full pipe counts it as dropped.
  // Async-signal-safe (clock_gettime and write are on the signal-safety(7) list).
  void emit(EventRecord rec) const;
};

}  // namespace ps
