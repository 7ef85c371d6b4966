// The ring that carries events from a server to Node, in the page shared by Node, the master and
// its children (shared_page.h).
//
// Why a ring and not one pipe write per event: a write() wakes the reader (Node's main thread),
// and a task that wakes another for every connection teaches the scheduler that it is
// "wake-affine" with it — the kernel then pulls the woken task, and the server threads created by
// the waker, onto the waker's CPU. The measured result (issue "Faults") was a server that slowed
// down by a sixth once it had been observed for a second. Writing into shared memory wakes nobody.
// Node drains the ring on a short timer while events flow; when it has seen nothing for a while it
// parks, and only then does the next writer ring a doorbell (one byte into a pipe): one wake-up
// per idle→busy transition, never one per connection.
//
// The ring is Dmitry Vyukov's bounded MPMC queue used with one consumer: each cell carries a
// sequence number; a writer takes a ticket with a compare-and-swap on `head`, fills the cell and
// publishes it by storing ticket + 1 in its sequence; the reader takes cells in ticket order. It
// is lock-free and async-signal-safe (atomics on lock-free 64-bit words, a 64-byte copy): the fork
// master writes from its SIGCHLD handler, children and worker threads write from anywhere. A
// writer never waits: when the ring is full the event is dropped and counted (`eventsDropped`).
//
// Events are delivered in ticket order, which is the order the events happened in as far as any
// one writer can tell (a Connection is published before the child or worker that will write its
// Disconnect exists). A writer killed between taking a ticket and publishing leaves a hole that
// blocks the reader until every writer is gone (the lifetime pipe's EOF); then the hole is skipped
// and counted as dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "event_record.h"

namespace ps {

// 16384 records of 64 bytes: a burst of several thousand connections while Node's thread is busy
// (at a pool's top churn rate here, ≈ 28,000 records/s, Node's loop may stall for half a second
// before a record is dropped). Its size has a price in the pool models: 50 member processes each
// write cells spread over 290 pages, and miss on almost every publish — publish() took 4.7% of
// 50 prefork members' CPU samples under churn (more than their serve loop), 84% of it on the
// first load of the cell; with 4,096 records, 1.2–1.6%, and the members' CPU per connection came
// down to the C reference's (BENCHMARKS.md, "The targets of issue #13"). The capacity was kept:
// a server never blocks on its observer, so a smaller ring means events lost, and Node's loop
// stalling for the 150 ms that 4,096 records last is not rare. The price is paid only while
// something listens to a connection's events (`connections_heard` below).
constexpr uint64_t kRingCapacity = 16384;
static_assert((kRingCapacity & (kRingCapacity - 1)) == 0, "a power of two: positions wrap with a mask");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the ring is shared across processes");

struct RingCell {
  std::atomic<uint64_t> seq;  // == position: free for the writer of that position; == position + 1: published
  EventRecord rec;
};

struct EventRing {
  // Apart on cache lines: writers contend on `head` only, the reader owns `tail`.
  alignas(64) std::atomic<uint64_t> head{0};           // the next writer's ticket
  alignas(64) std::atomic<uint64_t> tail{0};           // the next position Node reads (only Node writes it)
  alignas(64) std::atomic<uint32_t> reader_parked{1};  // 1: Node waits for the doorbell (it starts parked)
  // 1 while a JavaScript listener would hear a connection's events ('connection', 'disconnect'),
  // and until the server has started; set by Node only (NativeServer.hearConnections), read by
  // every writer: with nobody listening a connection's two records are not written at all
  // (EventPipe::announce_connection). Its own line: writers read it on every connection.
  alignas(64) std::atomic<uint32_t> connections_heard{1};
  alignas(64) RingCell cells[kRingCapacity];

  EventRing();

  // Writer side. Copies `rec` into the ring; false when it is full (the caller counts the drop).
  // Returns through `ring_doorbell` whether the reader was parked and must be woken.
  bool publish(const EventRecord& rec, bool& ring_doorbell);

  // Reader side (Node's thread only). Copies up to `max` published records, in order, to `out`;
  // returns how many. With `writers_gone` (every writer has exited), a hole left by a writer that
  // died mid-publish is skipped and counted in `holes` instead of stopping the drain.
  size_t drain(EventRecord* out, size_t max, bool writers_gone, uint64_t& holes);

  // Reader side: Node is about to stop polling. Marks the reader parked, then looks again: true if
  // the ring is empty (the next publish will ring the doorbell); false if a record slipped in —
  // the reader is then marked awake again and must keep draining.
  bool park();
};

}  // namespace ps
