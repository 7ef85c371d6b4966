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
  Trace = 7,      // one real syscall, recorded where it happened (only with the `trace` option)
};

// The calls a trace records (lib/trace.ts names them and ties each to the lecture).
enum class TraceCall : int32_t {
  Socket = 1,        // result: lfd
  Bind = 2,          // fd: lfd; peer fields: the address
  Listen = 3,        // fd: lfd; result: backlog
  Accept = 4,        // fd: lfd; result: cfd; peer: the client
  AcceptEintr = 5,   // fd: lfd; accept failed with EINTR and is retried
  Fork = 6,          // fd: cfd; result: child pid
  CloseCfd = 7,      // fd: cfd, closed by the master after fork (parent side)
  CloseLfd = 8,      // fd: lfd, closed by the child (pid: the child) or when the server stops
  ChildExit = 9,     // pid: the child; result: its _exit status
  Waitpid = 10,      // result: reaped pid; fd: its wait status
  PthreadCreate = 11,  // slot; result: pthread_create's return value
  PthreadDetach = 12,  // slot
  WorkerStart = 13,  // slot; fd: the cfd the worker read from its argument; result: its tid
  SlotsFull = 14,    // fd: cfd, closed at once (maxClients reached)
  Shutdown = 15,     // fd: shut down to wake a blocked call (lfd at stop, cfd at abort)
  CloseConn = 16,    // fd: cfd, closed when the connection is over (child or worker)
  Exec = 17,         // fork: the master program is exec'd; fd: Node's lfd; result: lfd in the master
};

enum class DisconnectReason : int32_t {
  End = 0,      // the client closed its side (read returned 0)
  Error = 1,    // read/write failed (ECONNRESET, EPIPE, …)
  Aborted = 2,  // the server ended it while closing (timeout reached)
  Idle = 3,     // silent (nothing read, or a write blocked) for idleTimeoutMs
  Crash = 4,    // the child or worker serving it crashed (lab hook)
};

enum class RejectReason : int32_t {
  MaxClients = 0,  // fork: live children; thread: slot table full
  NoThread = 1,    // thread: pthread_create failed
  NoProcess = 2,   // fork: fork failed
  NoFd = 3,        // accept failed with EMFILE/ENFILE: refused with the reserve descriptor
};

#pragma pack(push, 1)
struct EventRecord {
  uint8_t type = 0;     // EventType
  uint8_t family = 0;   // 4 or 6 (0: no peer)
  uint16_t port = 0;    // peer port, host byte order
  uint32_t id = 0;      // connection id (1, 2, … in accept order)
  int32_t pid = 0;      // fork: child pid
  int32_t slot = -1;    // thread: slot index
  int32_t code = 0;     // Disconnect: reason; Reject: reason; Reap: exit code (-1 if signalled);
                        // Error: errno; Trace: TraceCall
  int32_t detail = 0;   // Reap: terminating signal (0 if exited); Reject: errno of a failed
                        // fork/pthread_create; Trace: errno of the call (0: it succeeded)
  union {
    struct {            // Disconnect
      uint64_t bytesIn;
      uint64_t bytesOut;
    };
    struct {            // Trace
      int64_t fd;       // the descriptor argument
      int64_t result;   // the call's result (see TraceCall)
    };
  };
  uint8_t addr[16] = {};  // peer address, network byte order (4 bytes used for IPv4)
  uint64_t timeNs = 0;    // CLOCK_MONOTONIC when the event happened

  EventRecord() : bytesIn(0), bytesOut(0) {}
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
  bool tracing = false;  // the `trace` option: record syscalls too

  // Stamps the time (unless the record carries one already) and writes the record; on a full pipe
  // counts it as dropped.
  // Async-signal-safe (clock_gettime and write are on the signal-safety(7) list).
  void emit(EventRecord rec) const;

  // A connection refused: counts it in `rejected` and writes the Reject record. Async-signal-safe.
  void reject(const sockaddr_storage& peer, uint32_t id, RejectReason reason, int err) const;

  // A Trace record of the calling process (getpid is async-signal-safe), if tracing.
  void trace(TraceCall call, int64_t fd, int64_t result, int err = 0, uint32_t id = 0, int32_t slot = -1,
             const sockaddr_storage* peer = nullptr, uint64_t time_ns = 0) const;
};

// CLOCK_MONOTONIC in nanoseconds: the one clock of every record, comparable across processes.
uint64_t monotonic_ns();

}  // namespace ps
