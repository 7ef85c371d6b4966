// The counters every model keeps, the fork model's table of live children, the door (door.h),
// and the ring that carries events to Node.
//
// Lecture point 8: "parent and child share descriptors and an mmap shared mapping". The page is
// a memfd mmap(MAP_SHARED)ed in Node's process; the fork master (a program of its own, exec'd)
// maps the same memfd, and its children inherit that mapping across fork(), so Node, the master
// and every child see the same memory. Counters are lock-free atomics: exact, and safe to
// touch from a signal handler or a forked child (no locks, no allocation).
// The in-process models (thread, iterative) use the same page so stats() is one code path.
#pragma once

#include <atomic>
#include <cstdint>

#include "door.h"
#include "event_ring.h"

namespace ps {

// maxClients may not exceed this: the fork table below is sized by it, and the TypeScript
// validation uses the same number (exported to JS as constants.MAX_CLIENTS_LIMIT).
constexpr int kMaxClientsLimit = 4096;

// The fork model's own, lower cap: every connection is a process (a copy-on-write copy of the
// master's address space, with its own page tables). A connection flood must not become a fork bomb that
// takes the machine's process table and memory with it.
constexpr int kForkMaxClientsLimit = 1024;

using Counter = std::atomic<uint64_t>;
static_assert(Counter::is_always_lock_free, "counters must be lock-free to be shared across fork");

struct Counters {
  Counter accepted{0};       // connections accept()ed, refused ones included
  Counter active{0};         // connections being served now (fork: live children)
  Counter rejected{0};       // accepted and closed at once (maxClients reached)
  Counter closed{0};         // served connections that have ended
  Counter reaped{0};         // fork: children collected by waitpid()
  Counter eintrRetries{0};   // blocking calls interrupted by a signal and retried
  Counter bytesIn{0};        // bytes read from clients
  Counter bytesOut{0};       // bytes written to clients
  Counter eventsDropped{0};  // events lost because the event ring was full
  Counter eventWakeups{0};   // times a writer woke Node to deliver events (the ring's doorbell)
  Counter refusedNoFd{0};    // refused because no descriptor was left (EMFILE/ENFILE)
  Counter acceptErrors{0};   // accept() failures that belonged to one client (ECONNABORTED…)
};

// Bytes of one connection: updated by whoever serves it (a child process or a worker thread).
struct ConnBytes {
  Counter in{0};
  Counter out{0};
};

// One live child of the fork server's master. pid 0 means free. Written only by the master
// (main loop with signals blocked, or its SIGCHLD handler); the child updates `bytes`.
struct ChildEntry {
  std::atomic<int32_t> pid{0};
  uint32_t id = 0;
  int32_t door_ticket = -1;  // the door's hold on the connection's address (door.h), released at reap
  ConnBytes bytes;
};

struct SharedPage {
  Counters counters;
  ChildEntry children[kMaxClientsLimit];
  DoorPage door;     // the rules every accept path applies, and the live addresses (door.h)
  EventRing events;  // how events reach Node (event_ring.h)
};
static_assert(kDoorSourceSlots >= kMaxClientsLimit + 64,
              "a door slot for every live connection, and the pool's in flight");

// Creates the page in a memfd (close-on-exec) and maps it; `fd` owns the memfd afterwards, for a
// process that must map the same page (map_shared_page_fd). Returns nullptr with errno set on
// failure.
SharedPage* map_shared_page(int& fd);
// Maps a page created by map_shared_page() in another process, without initialising it.
SharedPage* map_shared_page_fd(int fd);
void unmap_shared_page(SharedPage* page);

}  // namespace ps
