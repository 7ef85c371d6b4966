// Serving one client: the inner loop of every model (lecture: "read n bytes, write them back").
//
// Runs in a forked child (fork model), a worker thread (thread model) or the server thread
// (iterative model), so it is written to be async-signal-safe: recv/send only, a stack buffer,
// atomics for the byte counts — no allocation, no locks, no exceptions.
#pragma once

#include "event_pipe.h"
#include "service.h"
#include "shared_page.h"

namespace ps {

// How every connection of a server is served. Every model (fork child, thread worker, iterative
// server thread, and the designs to come) serves through serve_connection() with this policy.
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
  // Lab hook: a message that is exactly kCrashMessage makes the serving child/worker crash.
  bool labCrash = false;

  // Whether any time limit applies (otherwise recv/send simply block, with no clock read).
  bool timed() const { return idleTimeoutMs > 0 || maxConnectionMs > 0 || minBytesPerSecond > 0; }
};

constexpr char kCrashMessage[] = "CRASH\n";

// The lab hook: n bytes just read are exactly kCrashMessage, and the policy has labCrash on.
bool is_crash_message(const ServePolicy& policy, const char* data, size_t n);

// Serves the connection with the policy's handler (service.h) until it is over. echo, upper,
// discard: until the client closes its side (half-close: everything read is answered first);
// chargen: until the client closes or aborts; daytime, time: once the message is sent (the write
// side is shut down then: the client reads EOF). Or until a read/write fails, or a time limit of
// the policy is reached. Short writes are completed; EINTR is retried and counted; MSG_NOSIGNAL
// means a client that went away yields EPIPE here rather than a SIGPIPE that kills the process.
// Returns End, Error, Idle, Lifetime, Slow, or Crash (the caller crashes; it also decides whether
// an end was really an abort).
DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes);

}  // namespace ps
