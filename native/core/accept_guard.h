// What a server does when accept() fails, shared by the fork master and the in-process servers.
// It allocates nothing and takes no lock (accept4, open, close, poll, publishing a record): the same
// code runs in the fork master program and on the in-process server threads.
//
// - EMFILE/ENFILE (no descriptor left): a level-triggered listener would report the pending
//   connection again at once, so a naive loop spins at 100% CPU. The classic fix (libev, Node's
//   own net.js discussions): keep one reserve descriptor; give it up, accept the connection,
//   close it at once (the client sees EOF instead of hanging), count it, take the reserve back.
// - Errors that belong to one client (ECONNABORTED, EPROTO, …): counted and skipped.
// - A passing shortage (ENOBUFS, ENOMEM): back off 10 ms instead of spinning.
// - Anything else is fatal for the accept loop.
#pragma once

#include <cstdint>

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

enum class AcceptVerdict { Retry, Fatal };

// The reserve descriptor: /dev/null, close-on-exec. -1 on failure.
int open_reserve_fd();

AcceptVerdict handle_accept_failure(int err, int lfd, int& reserve_fd, Counters& counters, const EventPipe& events);

}  // namespace ps
