// Serving one client: the inner loop of every model (lecture: "read n bytes, write them back").
//
// Runs in a forked child (fork model), a worker thread (thread model) or the server thread
// (iterative model), so it is written to be async-signal-safe: recv/send only, a stack buffer,
// atomics for the byte counts — no allocation, no locks, no exceptions.
#pragma once

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

enum class Handler {
  Echo,   // write back exactly what was read
  Upper,  // write back what was read with ASCII a–z turned into A–Z
};

// Echoes until the client closes its side (half-close: everything read is written back first),
// or a read/write fails. Short writes are completed; EINTR is retried and counted; MSG_NOSIGNAL
// means a client that went away yields EPIPE here rather than a SIGPIPE that kills the process.
// Returns End or Error (the caller decides whether an end was really an abort).
DisconnectReason serve_connection(int cfd, Handler handler, Counters& counters, ConnBytes& bytes);

}  // namespace ps
