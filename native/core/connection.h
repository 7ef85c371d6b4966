// Serving one client: the inner loop of every model (lecture: "read n bytes, write them back"),
// with the handler of service.h — as a blocking loop (serve_connection) and as the steps of an
// event loop (serve_begin, serve_readable, serve_writable).
//
// Runs in a forked child (fork model), a pool member (prefork, reuseport), a worker thread
// (thread model), a pool thread (prethread) or the server thread (iterative, epoll), so it is
// written to be async-signal-safe: recv/send only, a stack buffer, atomics for the byte counts —
// no allocation, no locks, no exceptions.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "event_pipe.h"
#include "service.h"
#include "shared_page.h"

namespace ps {

// How every connection of a server is served. Every blocking model (fork child, thread worker,
// iterative server thread, prethread pool thread, prefork member) serves through
// serve_connection() with this policy; the event loops (reuseport, epoll) through serve_begin(),
// serve_readable() and serve_writable(), keeping the time limits themselves.
struct ServePolicy {
  Handler handler = Handler::Echo;  // service.h (Exec is never served here: exec_child.h)
  // 0: no limit. Otherwise a client silent this long (nothing to read), or one that stops reading
  // so that a write blocks this long, is dropped (reason idle).
  int idleTimeoutMs = 0;
  // 0: no limit. Otherwise a connection open this long is closed however busy it is (reason
  // lifetime): a client cannot hold a place forever.
  int maxConnectionMs = 0;
  // 0: no minimum. Otherwise the client must send at least minBytesPerSecond × rateWindowMs / 1000
  // bytes (rounded up) in each consecutive window of rateWindowMs from the connection's start, or
  // it is dropped (reason slow). A slowloris that sends a byte a second is never idle; this drops
  // it. A client that stops reading is caught too: an echo server reads no more until it could
  // write the echo back. chargen, which reads nothing it keeps, counts what the client took
  // instead; daytime and time end before any window does.
  int minBytesPerSecond = 0;
  int rateWindowMs = 1000;
  // rpc: the largest reply a request may ask for (service.h: UNP's MAXN by default); a request
  // beyond it is refused.
  uint32_t rpcMaxBytes = kRpcDefaultMaxBytes;
  // Lab hook: a message that is exactly kCrashMessage makes the serving child/worker crash.
  bool labCrash = false;

  // Whether any time limit applies (otherwise recv/send simply block, with no clock read).
  bool timed() const { return idleTimeoutMs > 0 || maxConnectionMs > 0 || minBytesPerSecond > 0; }
};

constexpr char kCrashMessage[] = "CRASH\n";

// The lab hook: n bytes just read are exactly kCrashMessage, and the policy has labCrash on.
bool is_crash_message(const ServePolicy& policy, const char* data, size_t n);

// The time limits of one connection (ServePolicy) as deadlines on the monotonic clock, counted
// from when it is made. The idle limit is not here: it is measured from the start of each wait.
// serve_connection() keeps one per connection, and so do the event loops (reuseport, epoll).
struct ConnectionLimits {
  static constexpr int64_t kNever = INT64_MAX;
  int64_t life_end = kNever;    // maxConnectionMs after the start
  int64_t window_end = kNever;  // the end of the current rate window
  uint64_t window_need = 0;     // bytes the client must move within each window
  uint64_t window_got = 0;      // bytes it moved in the current one
  int64_t window_ms = 0;

  explicit ConnectionLimits(const ServePolicy& p);
  // Checks the limits at `now`: End when none is reached, else the reason to drop the client.
  // A window that is over starts the next one, from now.
  DisconnectReason check(int64_t now);
};

// Serves the connection with the policy's handler (service.h) until it is over. echo, upper,
// discard: until the client closes its side (half-close: everything read is answered first);
// chargen: until the client closes or aborts; daytime, time: once the message is sent (the write
// side is shut down then: the client reads EOF); rpc: each request line answered in turn until the
// client closes (a refused request ends it at once, reason Error). Or until a read/write fails, or a
// time limit of the policy is reached. Short writes are completed; EINTR is retried and counted; MSG_NOSIGNAL
// means a client that went away yields EPIPE here rather than a SIGPIPE that kills the process.
// Returns End, Error, Idle, Lifetime, Slow, or Crash (the caller crashes; it also decides whether
// an end was really an abort).
DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes);

// The same service for an event loop (reuseport, epoll, uring), one step at a time on a non-blocking socket.
// What a short send() left unsent is kept here until the socket takes it; meanwhile nothing more
// is read from that client, so a server's memory per client stays bounded (ref/epoll.c's rule).
struct PendingOutput {
  static constexpr size_t kSize = 16 * 1024;
  size_t offset = 0;             // where the unsent bytes start
  size_t length = 0;             // how many are unsent
  bool close_when_sent = false;  // daytime, time: the message is all there is, then the server closes
  ChargenCursor cursor;          // chargen, rpc: where the stream is
  RpcRequest request;            // rpc: the request line so far
  size_t reply_left = 0;         // rpc: reply bytes not yet taken into `data`
  size_t input_at = 0;           // rpc: the next byte of `input` to parse
  size_t input_length = 0;       // rpc: bytes in `input` (pipelined lines read with the last recv)
  bool input_ended = false;      // rpc: the client's EOF was read; after the last reply, the end
  char input[kRpcInputMax];      // rpc: what recv() read, parsed a line at a time
  char data[kSize];
};

// Where an event loop's steps move their bytes. A readiness loop (reuseport, epoll) lets them call
// recv() and send() on the non-blocking socket themselves. A completion loop (uring) cannot: its
// receives and sends are requests the kernel completes later. It stands in for the two calls —
// recv() hands over bytes its receives already brought; send() starts a send request, says EAGAIN
// until the request has completed, and then reports what the kernel sent — so the steps see what a
// non-blocking socket would show them, and each handler is still written once.
class StepIo {
 public:
  // As recv(2) on a non-blocking socket: bytes, 0 at the client's EOF, or -1 with errno (EAGAIN:
  // nothing yet).
  virtual ssize_t recv(char* buf, size_t n) = 0;
  // As send(2) with MSG_NOSIGNAL | MSG_DONTWAIT: the bytes taken, or -1 with errno (EAGAIN: not now).
  virtual ssize_t send(const char* buf, size_t n) = 0;

 protected:
  ~StepIo() = default;
};

// The connection a step serves: its descriptor, and a completion loop's StepIo (none: the
// descriptor's own recv() and send()).
struct StepSocket {
  StepSocket(int fd) : fd(fd) {}  // NOLINT(google-explicit-constructor): a readiness loop passes its cfd
  StepSocket(int fd, StepIo* io) : fd(fd), io(io) {}
  int fd;
  StepIo* io = nullptr;
};

// What the loop waits for next.
enum class ServeStep {
  Again,    // everything owed was written: wait until readable
  Pending,  // bytes are left in PendingOutput (rpc: or of a reply): wait until writable (and read nothing meanwhile)
  Stream,   // chargen: wait until readable or writable (the client's EOF ends the stream)
  Done,     // the connection is over: `reason` says how (Crash: the caller crashes)
};

// A new connection: what its handler does first (daytime, time: send the message; chargen:
// stream). Initialises `out`.
ServeStep serve_begin(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                      PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason);
// The socket is readable: one recv(); echo, upper: the answer, as far as send() takes it;
// discard, chargen: thrown away; rpc: request lines, each whole one answered in turn. The bytes read
// count for the rate window of `limits`.
ServeStep serve_readable(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                         PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason);
// The socket is writable: send what is pending (chargen: the stream, until the socket is full;
// rpc: the rest of the reply, then the requests already read).
ServeStep serve_writable(StepSocket cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes,
                         PendingOutput& out, ConnectionLimits& limits, DisconnectReason& reason);

}  // namespace ps
