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
//
// An event loop (epoll) with a non-blocking listener must never sleep: its variant below waits
// for nothing. EAGAIN ends a batch of accepts; EMFILE refuses what is pending with the reserve and
// stops when nothing is; a passing shortage (or a reserve that cannot be reopened) asks the loop
// to stop watching the listener for a moment (kAcceptPauseMs) instead of spinning on it.
#pragma once

#include <sys/socket.h>
#include <cstdint>

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

enum class AcceptVerdict {
  Retry,    // accept again now
  Fatal,    // the accept loop cannot go on
  Drained,  // non-blocking variant: nothing is pending; wait for the listener to be readable again
  Pause,    // non-blocking variant: stop watching the listener for kAcceptPauseMs
};

constexpr int kAcceptPauseMs = 10;

// The reserve descriptor: /dev/null, close-on-exec. -1 on failure.
int open_reserve_fd();

// accept4(lfd, SOCK_CLOEXEC | extra_flags): one client, or -1 with errno. EINTR is retried,
// counted in eintrRetries and traced (accept-eintr). A stop request is not lost to a retry: the
// servers stop by shutdown() of the listener, after which accept fails with EINVAL at once.
int accept_client(int lfd, sockaddr_storage& peer, Counters& counters, const EventPipe& events, int extra_flags = 0);

// `member_accepts`: a pool member's accept count (stats().perWorker), counted along with
// `accepted` when a connection is refused for lack of descriptors. `pending_wait_ms`: how long
// to wait for a pending connection when EMFILE came with none — 1000 for a blocking accept loop,
// 0 in an event loop (epoll reported the listener readable; waiting would stall every client).
AcceptVerdict handle_accept_failure(int err, int lfd, int& reserve_fd, Counters& counters, const EventPipe& events,
                                    Counter* member_accepts = nullptr, int pending_wait_ms = 1000);

// A non-blocking listener in an event loop (epoll): never waits, never sleeps.
AcceptVerdict handle_accept_failure_nonblocking(int err, int lfd, int& reserve_fd, Counters& counters,
                                                const EventPipe& events);

}  // namespace ps
