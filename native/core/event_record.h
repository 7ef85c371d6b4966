// The wire format of events: one fixed-size record per event, written by a server (the fork
// master, a child, a worker thread…) and decoded in JavaScript (lib/server/events.ts).
//
// This file is the one source of truth for it. Every enumeration below is written once, as an
// X-macro list of (C++ name, number, JS name): the enum is made from the list, and so is the
// table the addon exports to JS (native/addon.cc, constants.wire), together with the record's
// size and each field's offset and width. lib/server/events.ts decodes by those names, and
// test/wire-format.test.ts fails when the two sides disagree.
#pragma once

#include <sys/socket.h>
#include <climits>
#include <cstddef>
#include <cstdint>

namespace ps {

#define PS_EVENT_TYPES(X)                                                           \
  X(Connection, 1, "connection")                                                    \
  X(Disconnect, 2, "disconnect")                                                    \
  X(Reject, 3, "reject")                                                            \
  X(Reap, 4, "reap")                                                                \
  X(Error, 5, "error")                                                              \
  /* the server (fork: the master, set up) is in its accept loop */                 \
  X(Listening, 6, "listening")                                                      \
  /* one real syscall, recorded where it happened (only with the `trace` option) */ \
  X(Trace, 7, "trace")

// The calls a trace records. lib/trace/format.ts names each one and ties it to the lecture.
//   socket: result lfd · bind: fd lfd, peer the address · listen: fd lfd, result backlog
//   accept: fd lfd, result cfd, peer the client · accept-eintr: accept failed with EINTR, retried
//   fork: fd cfd, result child pid · close-cfd: the master closes cfd after fork
//   close-lfd: a child closes lfd (pid: the child), or the server closes it at stop
//   child-exit: result the child's _exit status · waitpid: result pid, fd its wait status
//   pthread_create: slot, result its return value · pthread_detach: slot
//   worker-start: slot, fd the cfd the worker read from its argument, result its tid
//   slots-full: fd cfd, closed at once (maxClients reached)
//   shutdown: fd shut down to wake a blocked call (lfd at stop, cfd at abort)
//   close-conn: fd cfd, closed when the connection is over (child or worker); result 0, or
//   (epoll) the epoll descriptor whose set close() also takes cfd out of, or (uring) the ring's
//   descriptor << 32 (the ring holds no request on cfd any more)
//   exec: the master program is exec'd; fd Node's lfd, result lfd's number in the master
// Pool models (prefork, reuseport, prethread); slot is the pool member's index:
//   pool-fork: the master forks member `slot` once, at start (or to replace it); result its pid
//   worker-accept: a member accepts; fd its listener, result cfd, peer the client
//   lock-file: prefork 'flock': the lock file, created and unlinked at once; fd it, result 0
//   fcntl-lock / fcntl-unlock: fcntl(fd, F_SETLKW, F_WRLCK / F_UNLCK) around accept
//   mutex-lock / mutex-unlock: the shared mutex around accept; mutex-lock's errno EOWNERDEAD:
//     its last holder died holding it, and it was made consistent again
//   sendmsg: prefork 'pass': the master passes cfd (result) over the member's socket (fd)
//   recvmsg: the member receives it: fd its socket, result the descriptor's number in the member
//   worker-idle: a 'pass' member tells the master it is idle again; fd its socket
//   close-node-lfd: reuseport: the master closes Node's listener once every worker listens
//   epoll_wait: fd the epoll instance, result the number of ready descriptors (epoll: only the
//     returns that carry events are recorded, a timeout wake-up is not)
//   epoll_ctl: fd the descriptor, result (op << 16) | events (op: 1 ADD, 2 DEL, 3 MOD)
// prethread (a pool of threads; slot: the thread's index) and epoll (one thread, an event loop):
//   pthread_create (pool): slot the new thread's index, fd -1, result its return value
//   mutex-lock / mutex-unlock ('mutex'): the accept mutex; fd lfd, result the thread's tid
//   worker-accept: a pool thread accepts, as above
//   queue-push ('main'): the server thread hands cfd to the pool; fd cfd, result the queue's length
//   queue-pop: a pool thread takes it; fd cfd, result its tid
//   pthread_join: slot the joined thread's index, result its tid
//   epoll_create: result the epoll descriptor
//   door-pass: the door's rules (door.h) let a client in; fd cfd, result the live connections
//   from its address, this one included (0 when maxPerSource is not set)
//   door-refuse: the door refused a client (closed at once); fd cfd, result the RejectReason
//   dup2: the exec handler's child puts the connection on a standard descriptor; fd cfd, result
//   the descriptor (0, 1, 2)
//   execve: the exec handler's child becomes the program; fd -1, result 0 (recorded before the
//   call, which does not return), or -1 with its errno when it failed
// uring (one thread, io_uring: uring_server.cc):
//   io_uring_setup: fd the setup flags the kernel took, result the ring's descriptor
//   io_uring_register: fd the ring, result (count << 8) | opcode (22 PBUF_RING: count receive
//     buffers lent to the kernel; 12 ENABLE_RINGS: the server thread becomes the ring's submitter)
//   io_uring_enter: fd the ring, result (completions << 32) | submissions: the requests it handed
//     the kernel and the completions ready when it returned (only calls that did either are recorded)
//   uring-arm: a multishot accept (fd lfd) or a receive (fd cfd) put in the submission queue;
//     result kind | 0x100 for a re-arm (kind 1 multishot accept, 2 multishot receive, 3 single-shot
//     receive, recorded at its first arm only, 4 a poll of lfd: out of descriptors with no client
//     pending, the accept waits for one, 5 single-shot accept (whenFull 'wait'), recorded at its
//     first arm and when a full server accepts again, 6 a poll of lfd for its hang-up alone while
//     full (whenFull 'wait')), errno what ended the one before (a re-arm)
//   uring-cancel: fd cfd, result why (1: backpressure, its receive stops; 2: the connection ends)
//   uring-cqe: a completion; fd the socket, result op << 40 | MORE << 32 | the result's 32 bits
//     (op 1 accept, 2 receive, 3 send, 4 cancel, 5 poll; MORE: a multishot request goes on; the
//     result is the kernel's: cfd, bytes, or -errno)
#define PS_TRACE_CALLS(X)                \
  X(Socket, 1, "socket")                 \
  X(Bind, 2, "bind")                     \
  X(Listen, 3, "listen")                 \
  X(Accept, 4, "accept")                 \
  X(AcceptEintr, 5, "accept-eintr")      \
  X(Fork, 6, "fork")                     \
  X(CloseCfd, 7, "close-cfd")            \
  X(CloseLfd, 8, "close-lfd")            \
  X(ChildExit, 9, "child-exit")          \
  X(Waitpid, 10, "waitpid")              \
  X(PthreadCreate, 11, "pthread_create") \
  X(PthreadDetach, 12, "pthread_detach") \
  X(WorkerStart, 13, "worker-start")     \
  X(SlotsFull, 14, "slots-full")         \
  X(Shutdown, 15, "shutdown")            \
  X(CloseConn, 16, "close-conn")         \
  X(Exec, 17, "exec")                    \
  X(PoolFork, 18, "pool-fork")           \
  X(WorkerAccept, 19, "worker-accept")   \
  X(LockFile, 20, "lock-file")           \
  X(FcntlLock, 21, "fcntl-lock")         \
  X(FcntlUnlock, 22, "fcntl-unlock")     \
  X(MutexLock, 23, "mutex-lock")         \
  X(MutexUnlock, 24, "mutex-unlock")     \
  X(Sendmsg, 25, "sendmsg")              \
  X(Recvmsg, 26, "recvmsg")              \
  X(WorkerIdle, 27, "worker-idle")       \
  X(CloseNodeLfd, 28, "close-node-lfd")  \
  X(EpollWait, 29, "epoll_wait")         \
  X(EpollCtl, 30, "epoll_ctl")           \
  X(EpollCreate, 31, "epoll_create")     \
  X(QueuePush, 32, "queue-push")         \
  X(QueuePop, 33, "queue-pop")           \
  X(PthreadJoin, 34, "pthread_join")     \
  X(DoorPass, 35, "door-pass")           \
  X(DoorRefuse, 36, "door-refuse")       \
  X(Dup2, 37, "dup2")                    \
  X(Execve, 38, "execve")                \
  X(UringSetup, 39, "io_uring_setup")    \
  X(UringReg, 40, "io_uring_register")   \
  X(UringEnter, 41, "io_uring_enter")    \
  X(UringArm, 42, "uring-arm")           \
  X(UringCancel, 43, "uring-cancel")     \
  X(UringCqe, 44, "uring-cqe")

// How a connection ended.
//   end: the client closed its side (read returned 0) · error: read/write failed (ECONNRESET…)
//   aborted: the server ended it while closing · idle: silent (or a write blocked) too long
//   crash: the process or thread serving it died (a crashed child or worker, a killed master)
//   lifetime: open for maxConnectionMs · slow: sent less than minBytesPerSecond in a rate window
#define PS_DISCONNECT_REASONS(X) \
  X(End, 0, "end")               \
  X(Error, 1, "error")           \
  X(Aborted, 2, "aborted")       \
  X(Idle, 3, "idle")             \
  X(Crash, 4, "crash")           \
  X(Lifetime, 5, "lifetime")     \
  X(Slow, 6, "slow")

// Why a connection was refused.
//   max-clients: fork: live children; thread: slot table full · no-thread: pthread_create failed
//   no-process: fork failed · no-fd: accept failed with EMFILE/ENFILE, refused with the reserve fd
//   The door (door.h), before any process or thread is spent: per-source: maxPerSource
//   connections from that address are live · rate: over maxConnectionsPerSecond · denied: the
//   address matches a deny rule, or allow rules exist and it matches none
#define PS_REJECT_REASONS(X)      \
  X(MaxClients, 0, "max-clients") \
  X(NoThread, 1, "no-thread")     \
  X(NoProcess, 2, "no-process")   \
  X(NoFd, 3, "no-fd")             \
  X(PerSource, 4, "per-source")   \
  X(Rate, 5, "rate")              \
  X(Denied, 6, "denied")

#define PS_ENUM_ENTRY(name, number, js) name = number,
enum class EventType : uint8_t { PS_EVENT_TYPES(PS_ENUM_ENTRY) };
enum class TraceCall : int32_t { PS_TRACE_CALLS(PS_ENUM_ENTRY) };
enum class DisconnectReason : int32_t { PS_DISCONNECT_REASONS(PS_ENUM_ENTRY) };
enum class RejectReason : int32_t { PS_REJECT_REASONS(PS_ENUM_ENTRY) };
#undef PS_ENUM_ENTRY

#pragma pack(push, 1)
struct EventRecord {
  uint8_t type = 0;    // EventType
  uint8_t family = 0;  // 4 or 6 (0: no peer)
  uint16_t port = 0;   // peer port, host byte order
  uint32_t id = 0;     // connection id (1, 2, … in accept order)
  int32_t pid = 0;     // fork: child pid; prefork, reuseport: the pool member's pid
  int32_t slot = -1;   // thread: slot index; prefork, reuseport, prethread: the pool member's index (JS: worker)
  int32_t code = 0;    // Disconnect: reason; Reject: reason; Reap: exit code (-1 if signalled);
                       // Error: errno; Trace: TraceCall
  int32_t detail = 0;  // Reap: terminating signal (0 if exited); Reject: errno of a failed
                       // fork/pthread_create; Trace: errno of the call (0: it succeeded);
                       // Error: the TraceCall that failed (0: accept)
  union {
    struct {  // Disconnect
      uint64_t bytesIn;
      uint64_t bytesOut;
    };
    struct {           // Trace
      int64_t fd;      // the descriptor argument
      int64_t result;  // the call's result (see TraceCall)
    };
  };
  uint8_t addr[16] = {};  // peer address, network byte order (4 bytes used for IPv4)
  uint64_t timeNs = 0;    // CLOCK_MONOTONIC when the event happened

  EventRecord() : bytesIn(0), bytesOut(0) {}
};
#pragma pack(pop)

constexpr int kEventRecordSize = 64;
static_assert(sizeof(EventRecord) == kEventRecordSize, "a record is 64 bytes: one cache line");
static_assert(sizeof(EventRecord) <= PIPE_BUF, "records must be writable atomically");

// The fields JS decodes, in one list: (name, offset, width in bytes). The addon exports it.
#define PS_EVENT_FIELDS(X)                                                      \
  X("type", offsetof(::ps::EventRecord, type), sizeof(uint8_t))                 \
  X("family", offsetof(::ps::EventRecord, family), sizeof(uint8_t))             \
  X("port", offsetof(::ps::EventRecord, port), sizeof(uint16_t))                \
  X("id", offsetof(::ps::EventRecord, id), sizeof(uint32_t))                    \
  X("pid", offsetof(::ps::EventRecord, pid), sizeof(int32_t))                   \
  X("slot", offsetof(::ps::EventRecord, slot), sizeof(int32_t))                 \
  X("code", offsetof(::ps::EventRecord, code), sizeof(int32_t))                 \
  X("detail", offsetof(::ps::EventRecord, detail), sizeof(int32_t))             \
  X("bytesIn", offsetof(::ps::EventRecord, bytesIn), sizeof(uint64_t))          \
  X("bytesOut", offsetof(::ps::EventRecord, bytesOut), sizeof(uint64_t))        \
  X("fd", offsetof(::ps::EventRecord, fd), sizeof(int64_t))                     \
  X("result", offsetof(::ps::EventRecord, result), sizeof(int64_t))             \
  X("addr", offsetof(::ps::EventRecord, addr), sizeof(::ps::EventRecord::addr)) \
  X("timeNs", offsetof(::ps::EventRecord, timeNs), sizeof(uint64_t))

// Fills family/port/addr from an accept()ed peer address. Async-signal-safe.
void set_peer(EventRecord& rec, const sockaddr_storage& peer);

}  // namespace ps
