// Lecture point 2 and 7: a blocking call (accept, read, write, waitpid…) interrupted by a signal
// returns -1 with errno == EINTR. That is not an error: the call is simply made again.
//
// This is the one place where that retry happens. Each retry is counted in the server's
// `eintrRetries` counter, so the lecture's claim is observable: a fork server's master blocked in
// accept() is interrupted by every SIGCHLD of a finishing child (its handler has no SA_RESTART).
//
// Async-signal-safe: no allocation, no locks; a relaxed atomic add is a single instruction.
#pragma once

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>

namespace ps {

// The signal whose handler ran last in this process (0: none yet). The handlers of the master
// programs note it first thing, so that a traced EINTR names the signal that interrupted the call
// (the accept-eintr record's result): a finished child's SIGCHLD, or close()'s SIGTERM at stop,
// which interrupts accept() even where no SIGCHLD handler is installed (reap: 'none'). Two
// handlers that run back to back before the call returns: the second is named.
inline volatile sig_atomic_t last_handled_signal = 0;
inline void note_signal(int sig) { last_handled_signal = sig; }

template <typename Call>
auto retry_eintr(std::atomic<uint64_t>& retries, Call call) -> decltype(call()) {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
    retries.fetch_add(1, std::memory_order_relaxed);
  }
}

// Node's own side (waiting for the master, reading its exec status): retried, not counted — the
// counter belongs to the server's processes and threads.
template <typename Call>
auto retry_eintr(Call call) -> decltype(call()) {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
  }
}

// The same, with a hook called on each retry (the trace records "accept interrupted: EINTR").
template <typename Call, typename OnRetry>
auto retry_eintr(std::atomic<uint64_t>& retries, Call call, OnRetry on_retry) -> decltype(call()) {
  return retry_eintr(retries, [&] {
    auto result = call();
    if (result == -1 && errno == EINTR) {
      int saved = errno;
      on_retry();
      errno = saved;
    }
    return result;
  });
}

}  // namespace ps
