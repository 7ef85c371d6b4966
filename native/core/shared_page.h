// The counters every model keeps, the table of live connections served by processes (fork:
// one child each; prefork and reuseport: the pool member serving it), the pool's own state, the
// door (door.h), and the ring that carries events to Node.
//
// Lecture point 8: "parent and child share descriptors and an mmap shared mapping". The page is
// a memfd mmap(MAP_SHARED)ed in Node's process; the fork master (a program of its own, exec'd)
// maps the same memfd, and its children inherit that mapping across fork(), so Node, the master
// and every child see the same memory. Counters are lock-free atomics: exact, and safe to
// touch from a signal handler or a forked child (no locks, no allocation).
// The in-process models (thread, iterative, prethread, epoll) use the same page so stats() is one
// code path.
#pragma once

#include <pthread.h>
#include <atomic>
#include <cstdint>

#include "door.h"
#include "event_ring.h"
#include "room_gate.h"

namespace ps {

// maxClients may not exceed this: the fork table below is sized by it, and the TypeScript
// validation uses the same number (exported to JS as constants.MAX_CLIENTS_LIMIT).
constexpr int kMaxClientsLimit = 4096;

// The fork model's own, lower cap: every connection is a process (a copy-on-write copy of the
// master's address space, with its own page tables). A connection flood must not become a fork bomb that
// takes the machine's process table and memory with it.
constexpr int kForkMaxClientsLimit = 1024;

// Pool models (prefork, reuseport, prethread): members per pool. The TypeScript validation uses the same
// number (exported to JS as constants.MAX_WORKERS).
constexpr int kMaxWorkers = 64;

using Counter = std::atomic<uint64_t>;
static_assert(Counter::is_always_lock_free, "counters must be lock-free to be shared across fork");

struct Counters {
  Counter accepted{0};       // connections accept()ed, refused ones included
  Counter active{0};         // connections being served now (fork: live children)
  Counter rejected{0};       // accepted and closed at once (maxClients reached)
  Counter closed{0};         // served connections that have ended
  Counter reaped{0};         // processes the master collected by waitpid() (fork: children; pools: workers)
  Counter eintrRetries{0};   // blocking calls interrupted by a signal and retried
  Counter bytesIn{0};        // bytes read from clients
  Counter bytesOut{0};       // bytes written to clients
  Counter eventsDropped{0};  // events lost because the event ring was full (Node's thread wedged: event_drain.h)
  Counter eventWakeups{0};   // times a writer woke Node's drain thread (the ring's doorbell)
  Counter refusedNoFd{0};    // refused because no descriptor was left (EMFILE/ENFILE)
  Counter acceptErrors{0};   // accept() failures that belonged to one client (ECONNABORTED…)
  Counter reapedCpuUs{0};    // user + system µs of the processes the master reaped (reap.h: wait4's rusage)
};

// Bytes of one connection: updated by whoever serves it (a child process or a worker thread).
struct ConnBytes {
  Counter in{0};
  Counter out{0};
};

// One live connection served by a process. pid 0 means free.
//   fork: the child serving it. Written only by the master (main loop with signals blocked, or
//         its SIGCHLD handler); the child updates `bytes`.
//   prefork, reuseport: the pool member serving it. The member claims a free entry (CAS on pid)
//         and frees it when the connection ends; when a member dies, the master reports and frees
//         the entries that still carry its pid (id 0: claimed, not yet reported).
struct ChildEntry {
  std::atomic<int32_t> pid{0};
  uint32_t id = 0;
  int32_t door_ticket = -1;  // the door's hold on the connection's address (door.h), released at reap
  bool announced = false;    // its Connection record was written: its Disconnect record will be (event_pipe.h)
  ConnBytes bytes;
};

// What the members of a pool (prefork, reuseport; prethread uses `accepts` only) share besides the
// counters.
struct PoolPage {
  Counter accepts[kMaxWorkers];  // connections accepted by (pass, prethread 'main': handed to) each member
  // Each member's pid, 0 once reaped: if the master dies, Node waits for these to be reaped by
  // their new parent too (fork_server.cc), the idle ones included.
  std::atomic<int32_t> pids[kMaxWorkers];
  std::atomic<int32_t> stopping{0};  // prefork: close() has begun, members leave when idle
  pthread_mutex_t accept_mutex;      // prefork acceptLock 'mutex': set up by the master (robust, process-shared)
  // whenFull 'wait' (room_gate.h). prefork: bit i is set while member i holds a seat — it may
  // accept, or it serves — at most maxClients at once; the master clears a dead member's.
  std::atomic<uint64_t> seats{0};
  RoomGate room;  // prefork: members waiting for a seat
  // Member i's books (pool_master.h, BooksState): whether it is writing the end of a connection,
  // so that the master never SIGKILLs it halfway through (finish_connection, end_members).
  std::atomic<uint32_t> books[kMaxWorkers];
};

struct SharedPage {
  Counters counters;
  ChildEntry children[kMaxClientsLimit];
  PoolPage pool;
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
// Maps every page of the shared page into this process's page tables now, writable
// (MADV_POPULATE_WRITE, Linux 5.14). fork() does not copy the page-table entries of a shared
// mapping, so a new pool member would otherwise take a fault on the first write to each page of
// the event ring — about one fault for every five connections of its first second under churn,
// on 50 members. A kernel without it (EINVAL) leaves the faults to happen as before. One syscall.
void prefault_shared_page(SharedPage* page);

}  // namespace ps
