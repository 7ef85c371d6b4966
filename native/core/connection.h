// Serving one client: the inner loop of every model (lecture: "read n bytes, write them back").
//
// Runs in a forked child (fork model), a worker thread (thread model) or the server thread
// (iterative model), so it is written to be async-signal-safe: recv/send only, a stack buffer,
// atomics for the byte counts — no allocation, no locks, no exceptions.
#pragma once

#include <cstddef>

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

enum class Handler {
  Echo,   // write back exactly what was read
  Upper,  // write back what was read with ASCII a–z turned into A–Z
};

// How every connection of a server is served.
struct ServePolicy {
  Handler handler = Handler::Echo;
  // 0: no limit. Otherwise a client silent this long (nothing to read), or one that stops reading
  // so that a write blocks this long, is dropped: a slowloris cannot hold a slot forever.
  int idleTimeoutMs = 0;
  // Lab hook: a message that is exactly kCrashMessage makes the serving child/worker crash.
  bool labCrash = false;
};

constexpr char kCrashMessage[] = "CRASH\n";

// Echoes until the client closes its side (half-close: everything read is written back first),
// or a read/write fails. Short writes are completed; EINTR is retried and counted; MSG_NOSIGNAL
// means a client that went away yields EPIPE here rather than a SIGPIPE that kills the process.
// Returns End, Error, Idle, or Crash (the caller crashes; it also decides whether an end was
// really an abort).
DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes);

// The same service for an event loop (reuseport), one step at a time on a non-blocking socket.
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

// The socket is readable: one recv(), the echo of what it read, as far as send() takes it.
EchoStep echo_readable(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes, PendingEcho& pending,
                       DisconnectReason& reason);
// The socket is writable: send what is pending.
EchoStep echo_writable(int cfd, Counters& counters, ConnBytes& bytes, PendingEcho& pending, DisconnectReason& reason);

}  // namespace ps
