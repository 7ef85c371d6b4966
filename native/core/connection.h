// Serving one client: the inner loop of every model (lecture: "read n bytes, write them back").
//
// Runs in a forked child (fork model), a worker thread (thread model), a pool thread (prethread)
// or the server thread (iterative model), so it is written to be async-signal-safe: recv/send
// only, a stack buffer, atomics for the byte counts — no allocation, no locks, no exceptions. The
// event loops (reuseport, epoll) serve one step at a time with echo_readable()/echo_writable().
// Every one of them transforms with apply_handler().
#pragma once

#include <cstddef>
#include <cstdint>

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

enum class Handler {
  Echo,   // write back exactly what was read
  Upper,  // write back what was read with ASCII a–z turned into A–Z
};

// How every connection of a server is served. Every blocking model (fork child, thread worker,
// iterative server thread, prethread pool thread, prefork member) serves through
// serve_connection() with this policy; the event loops (reuseport, epoll) through
// echo_readable()/echo_writable(), keeping the time limits themselves.
struct ServePolicy {
  Handler handler = Handler::Echo;
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
  // write the echo back.
  int minBytesPerSecond = 0;
  int rateWindowMs = 1000;
  // Lab hook: a message that is exactly kCrashMessage makes the serving child/worker crash.
  bool labCrash = false;

  // Whether any time limit applies (otherwise recv/send simply block, with no clock read).
  bool timed() const { return idleTimeoutMs > 0 || maxConnectionMs > 0 || minBytesPerSecond > 0; }
};

constexpr char kCrashMessage[] = "CRASH\n";

// The handler's transform of n bytes just read, in place (the reply is as long as the request):
// the one definition of echo and upper, for the blocking loop and the event loops alike.
void apply_handler(Handler handler, char* data, size_t n);

// The time limits of one connection (ServePolicy) as deadlines on the monotonic clock, counted
// from when it is made. The idle limit is not here: it is measured from the start of each wait.
// serve_connection() keeps one per connection, and so does the reuseport event loop (the epoll
// loop keeps the deadlines in timer lists instead, and uses window_got).
struct ConnectionLimits {
  static constexpr int64_t kNever = INT64_MAX;
  int64_t life_end = kNever;    // maxConnectionMs after the start
  int64_t window_end = kNever;  // the end of the current rate window
  uint64_t window_need = 0;     // bytes the client must send within each window
  uint64_t window_got = 0;      // bytes it sent in the current one
  int64_t window_ms = 0;

  explicit ConnectionLimits(const ServePolicy& p);
  // Checks the limits at `now`: End when none is reached, else the reason to drop the client.
  // A window that is over starts the next one, from now.
  DisconnectReason check(int64_t now);
};

// Echoes until the client closes its side (half-close: everything read is written back first),
// or a read/write fails, or a time limit of the policy is reached. Short writes are completed;
// EINTR is retried and counted; MSG_NOSIGNAL means a client that went away yields EPIPE here
// rather than a SIGPIPE that kills the process. Returns End, Error, Idle, Lifetime, Slow, or Crash
// (the caller crashes; it also decides whether an end was really an abort).
DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes);

// The same service for an event loop (reuseport, epoll), one step at a time on a non-blocking socket.
// What a short send() left unsent is kept here until the socket takes it; meanwhile nothing more
// is read from that client, so a server's memory per client stays bounded (ref/epoll.c's rule).
struct PendingEcho {
  static constexpr size_t kSize = 16 * 1024;
  size_t offset;  // where the unsent bytes start
  size_t length;  // how many are unsent
  char data[kSize];
};

enum class EchoStep {
  Again,    // everything read was written back: wait until readable
  Pending,  // bytes are left in PendingEcho: wait until writable
  Done,     // the connection is over: `reason` says how (Crash: the caller crashes)
};

// The socket is readable: one recv(), the echo of what it read, as far as send() takes it. The
// bytes read count for the rate window of `limits`.
EchoStep echo_readable(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes, PendingEcho& pending,
                       ConnectionLimits& limits, DisconnectReason& reason);
// The socket is writable: send what is pending.
EchoStep echo_writable(int cfd, Counters& counters, ConnBytes& bytes, PendingEcho& pending, DisconnectReason& reason);

}  // namespace ps
