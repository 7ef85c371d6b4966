// Node's side of the event ring (event_ring.h): a thread of Node's process, named ps-events, that
// takes the records out of the ring as they come and keeps them, in order, in memory that grows,
// until JavaScript takes them.
//
// Why a thread: the ring is small (its size costs the pool members: event_ring.h), and a server
// never waits for its observer, so a record that finds the ring full is lost. When JavaScript
// drained the ring itself, a main thread busy for a fifth of a second (a listener's work, a
// garbage collection, a machine with more runnable tasks than CPUs) was enough to lose events
// under churn. This thread runs no JavaScript: it keeps the ring empty whatever Node's main
// thread is doing, and the records wait here for as long as it takes — up to `limit` records
// (ServerOptions::eventBacklog): past that, Node's main thread has taken nothing for seconds on
// end (it is wedged), this thread stops taking, and the ring drops and counts again.
//
// How it is woken, never once per connection (ARCHITECTURE.md, "Why a ring"): while records flow
// it drains the ring every kDrainIntervalMs, on a timer; after a few empty drains it parks the
// ring, and the next writer rings the doorbell (one byte into the event pipe, which this thread
// polls): one wake-up per idle→busy transition. It wakes Node's main thread the same way: a byte
// into the relay pipe (a net.Socket watches its read end), written only when JavaScript had taken
// everything and said so — at most once per drain, never per record.
//
// The event pipe's EOF (every writer gone) is passed on: this thread drains the ring a last time,
// skipping the holes of writers that died mid-publish (counted as dropped), and closes the relay's
// write end; JavaScript then sees EOF after the last record.
#pragma once

#include <pthread.h>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "event_record.h"
#include "shared_page.h"
#include "sys_error.h"
#include "unique_fd.h"

namespace ps {

// The drain thread's name (comm, as server.h names the in-process models' threads); exported as
// constants.threadNames.events.
inline constexpr char kEventThreadName[] = "ps-events";

// The drain thread's period while records flow: events reach JavaScript this late at most (plus
// scheduling). At a pool's top churn rate here (≈ 28,000 records/s) a drain takes ≈ 280 records,
// and the ring holds what arrives while this thread waits for a CPU many times over.
constexpr int kDrainIntervalMs = 10;
// Empty drains in a row after which the ring is parked and the thread sleeps until the doorbell.
constexpr int kIdleDrainsBeforePark = 5;
// The default bound of what waits for JavaScript: 262,144 records (16 MiB), nine seconds of the
// top churn rate without JavaScript taking any. Memory is taken as records arrive and given back
// as JavaScript takes them.
constexpr size_t kDefaultEventBacklog = 262144;

class EventDrain {
 public:
  EventDrain() = default;
  ~EventDrain() { stop(); }
  EventDrain(const EventDrain&) = delete;
  EventDrain& operator=(const EventDrain&) = delete;

  // Starts the thread (every signal blocked on it), which owns `event_read` — the event pipe's read
  // end, the doorbell and the writers' lifetime — from now on. `limit`: records kept at most.
  SysError start(SharedPage* page, UniqueFd event_read, size_t limit);
  // The relay pipe's read end, for JavaScript; the caller owns it. Valid once.
  int take_relay_fd() { return relay_read_.release(); }

  // JavaScript's thread. Copies up to `max` records, in order, to `out` and returns how many. When
  // there was none, JavaScript is marked waiting: the next record this thread takes rings the relay.
  size_t take(EventRecord* out, size_t max);

  // Stops the thread, if it still runs (Node is tearing down, or the server never finished), joins
  // it and frees what was kept. Idempotent.
  void stop();

 private:
  struct Chunk;

  static void* thread_main(void* self);
  void run();
  // Moves what the ring holds into the backlog (all of it once the writers are gone); returns how
  // many records were moved, and through `full` whether the backlog is at its limit.
  size_t move_from_ring(bool writers_gone, bool& full);
  // The chunk new records go to, with room (a new one if the last is full); null if no memory.
  Chunk* writable_tail();

  SharedPage* page_ = nullptr;
  size_t limit_ = kDefaultEventBacklog;
  UniqueFd event_read_;
  UniqueFd relay_read_;
  UniqueFd relay_write_;  // the drain thread's; closed once the writers are gone and all is moved
  UniqueFd wake_;         // an eventfd: stop() wakes the thread with it
  pthread_t thread_{};
  bool running_ = false;  // JavaScript's thread only

  std::mutex mu_;           // the backlog below; taken by this thread and JavaScript's, never by a writer
  Chunk* head_ = nullptr;   // the oldest records
  Chunk* tail_ = nullptr;   // the newest
  Chunk* spare_ = nullptr;  // one emptied chunk kept, so that a steady flow allocates nothing
  size_t held_ = 0;         // records in the backlog
  bool js_waiting_ = true;  // JavaScript took everything and waits for the relay's byte
};

}  // namespace ps
