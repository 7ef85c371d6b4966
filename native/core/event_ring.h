// The ring that carries events from a server to Node, in the page shared by Node, the master and
// its children (shared_page.h).
//
// Why a ring and not one pipe write per event: a write() wakes the reader (Node's main thread),
// and a task that wakes another for every connection teaches the scheduler that it is
// "wake-affine" with it — the kernel then pulls the woken task, and the server threads created by
// the waker, onto the waker's CPU. The measured result (issue "Faults") was a server that slowed
// down by a sixth once it had been observed for a second. Writing into shared memory wakes nobody.
// A thread of Node's process (event_drain.h) drains the ring on a short timer while events flow;
// when it has seen nothing for a while it parks, and only then does the next writer ring a
// doorbell (one byte into a pipe): one wake-up per idle→busy transition, never one per connection.
//
// The ring is Dmitry Vyukov's bounded MPMC queue used with one consumer: each cell carries a
// sequence number; a writer takes a ticket with a compare-and-swap on `head`, fills the cell and
// publishes it by storing ticket + 1 in its sequence; the reader takes cells in ticket order. It
// is lock-free and async-signal-safe (atomics on lock-free 64-bit words, a 64-byte copy): the fork
// master writes from its SIGCHLD handler, children and worker threads write from anywhere. A
// writer never waits: when the ring is full the event is dropped and counted (`eventsDropped`).
// The drain thread keeps it from filling while Node lives (it takes the records into memory that
// grows, whatever Node's main thread is doing), so that a drop means a wedged Node (event_drain.h).
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

// 16384 records of 64 bytes: what arrives while the drain thread waits for a CPU. It drains every
// 10 ms, but on a machine with more runnable tasks than CPUs it runs late: in 12 runs of 50,000
// connections of churn (prefork, reuseport, prethread 'mutex' and 'main', 3 each) beside a CPU hog
// (2 CPUs, load average near 20; scripts/event-churn.js, with a temporary probe in the thread
// timing its drains), drains came up to 137 ms apart and one took 8,212 records — a ring of 4,096
// or 8,192 would have dropped some. Its size had a price in the pool models, measured when Node drained the
// ring itself: publish() took 4.7% of 50 prefork members' CPU samples under churn (84% of it on
// the first load of the cell, its pages missing in the address translation), 1.2–1.6% with 4,096
// records (BENCHMARKS.md, "The targets of issue #13"). Measured again with the drain thread, on
// the same 50 members (`perf record -e cpu-clock`, 3 s of churn, three alternating rounds, load
// ≈ 20): 0.73–0.88% with 16,384, 0.72–1.20% with 4,096, 0.62–0.88% with 2,048 — no difference
// this machine can show, where 2,048 dropped 679 records in one round. So the ring stays at 16,384:
// the drain thread made events safe from a slow Node, and the size keeps them safe from a slow
// drain thread. The cells are written only while something listens to a connection's events
// (`connections_heard` below).
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
