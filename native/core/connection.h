// Serving one client: the inner loop of every blocking model (lecture: "read n bytes, write them
// back"). The event loop (epoll) serves many clients without blocking and shares only the handler.
//
// Runs in a forked child (fork model), a worker thread (thread model), a pool thread (prethread)
// or the server thread (iterative model), so it is written to be async-signal-safe: recv/send
// only, a stack buffer, atomics for the byte counts — no allocation, no locks, no exceptions.
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

// The handler's transform of n bytes just read, in place (the reply is as long as the request):
// every model's one definition of echo and upper — the blocking loop below and the event loop
// (epoll_server.cc) both call it. Async-signal-safe.
void apply_handler(Handler handler, char* data, size_t n);

// The lab hook: n bytes just read are exactly kCrashMessage, and the policy has labCrash on.
bool is_crash_message(const ServePolicy& policy, const char* data, size_t n);

// Echoes until the client closes its side (half-close: everything read is written back first),
// or a read/write fails. Short writes are completed; EINTR is retried and counted; MSG_NOSIGNAL
// means a client that went away yields EPIPE here rather than a SIGPIPE that kills the process.
// Returns End, Error, Idle, or Crash (the caller crashes; it also decides whether an end was
// really an abort).
DisconnectReason serve_connection(int cfd, const ServePolicy& policy, Counters& counters, ConnBytes& bytes);

}  // namespace ps
