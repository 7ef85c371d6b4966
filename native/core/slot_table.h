// The lecture's fix for the thread server (points 10–11, homework 2):
//
//   struct INFO { int cfd; pthread_t threadID; struct sockaddr_in client; } info[100];
//
// Every cfd starts at -1; a new connection takes the first free slot and its worker thread is
// given *that slot* — never &cfd, which the next accept() would overwrite before the thread read
// it. When every slot is in use the connection is refused (the caller closes cfd).
//
// No lock: a slot's `state` is an atomic, and each transition belongs to one party. Only the
// server thread claims (Free → InUse; prethread 'mutex': the pool thread holding the accept
// mutex, so still one claimer at a time); only the slot's worker releases (InUse → Ending → Free,
// closing cfd in between); close()'s timeout (shutdown_all, on Node's thread) borrows a slot in use
// for the moment of its shutdown() (InUse → Aborting → InUse), so it never shuts down a descriptor
// number that has already been closed and reused. Why no mutex: a worker finishing while the
// server thread claims would contend for it, and the kernel's futex wake-up on the accept path is
// exactly the per-connection wake-up of another task that drags the server's threads onto one CPU
// (event_ring.h tells that story).
#pragma once

#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <atomic>
#include <cstdint>
#include <memory>

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

enum class SlotState : int {
  Free,      // cfd == -1: the server thread may claim it
  InUse,     // a connection is being served
  Ending,    // its worker is closing cfd (release())
  Aborting,  // shutdown_all() is shutting cfd down
};

struct Slot {
  std::atomic<SlotState> state{SlotState::Free};
  int cfd = -1;               // -1: free
  pthread_t thread{};         // the worker serving it (thread model), written by the worker itself
  sockaddr_storage client{};  // the peer, as accept() returned it
  uint32_t id = 0;            // connection id
  int32_t door_ticket = -1;   // the door's hold on the client's address (door.h), released at the end
  pid_t tid = 0;              // kernel thread id of the last worker in this slot
  bool aborted = false;       // ended by shutdown_all(), not by the client
  bool announced = false;     // its Connection record was written: its Disconnect record will be (event_pipe.h)
  ConnBytes bytes;
  void* owner = nullptr;  // the server, so a worker needs nothing but its slot
};

class SlotTable {
 public:
  SlotTable(int capacity, void* owner);

  int capacity() const { return capacity_; }
  int index_of(const Slot* slot) const { return static_cast<int>(slot - slots_.get()); }

  // Whether a claim would find a free slot (every slot retired is free). whenFull 'wait': the
  // one claimer looks before it accepts, and nobody else can take the slot meanwhile.
  bool has_free() const { return in_use_.load() < capacity_; }

  // One claimer at a time (the server thread). The first free slot, now holding cfd (and the
  // connection's door ticket); nullptr when all are in use.
  Slot* claim(int cfd, const sockaddr_storage& client, uint32_t id, int32_t door_ticket = -1);
  // The slot's worker only. Closes the slot's descriptor and frees the slot. Returns whether
  // shutdown_all() ended it.
  bool release(Slot* slot);
  // The connection's last event is written: it no longer counts for wait_empty(). Separate from
  // release() so that the server thread cannot close the event pipe before that last event.
  void retire();
  // Wakes every blocked worker: shutdown(SHUT_RDWR) on each descriptor in use (traced).
  void shutdown_all(const EventPipe& events);
  // Blocks until no slot is in use. Polls: it runs once, when the server stops.
  void wait_empty();
  // Blocks (bounded) until the workers that used the slots have left the kernel's task list, so
  // that when close() settles /proc/self/task is back where it was.
  void wait_workers_gone();

 private:
  const int capacity_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<int> in_use_{0};  // claimed and not yet retired
};

}  // namespace ps
