// The lecture's fix for the thread server (points 10–11, homework 2):
//
//   struct INFO { int cfd; pthread_t threadID; struct sockaddr_in client; } info[100];
//
// Every cfd starts at -1; a new connection takes the first free slot and its worker thread is
// given *that slot* — never &cfd, which the next accept() would overwrite before the thread read
// it. When every slot is in use the connection is refused (the caller closes cfd).
//
// One mutex guards the table. A worker's descriptor is closed under it (release()), so that
// shutdown_all() — the close timeout ending live connections — never shuts down a descriptor
// number that has already been closed and reused.
#pragma once

#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "event_pipe.h"
#include "shared_page.h"

namespace ps {

struct Slot {
  int cfd = -1;               // -1: free
  pthread_t thread{};         // the worker serving it (thread model)
  sockaddr_storage client{};  // the peer, as accept() returned it
  uint32_t id = 0;            // connection id
  pid_t tid = 0;              // kernel thread id of the last worker in this slot
  bool aborted = false;       // ended by shutdown_all(), not by the client
  ConnBytes bytes;
  void* owner = nullptr;  // the server, so a worker needs nothing but its slot
};

class SlotTable {
 public:
  SlotTable(int capacity, void* owner);

  int capacity() const { return capacity_; }
  int index_of(const Slot* slot) const { return static_cast<int>(slot - slots_.get()); }

  // The first free slot (cfd == -1), now holding cfd; nullptr when all are in use.
  Slot* claim(int cfd, const sockaddr_storage& client, uint32_t id);
  // Records the worker's pthread_t, unless the worker already finished and the slot moved on.
  void set_thread(Slot* slot, uint32_t id, pthread_t thread);
  // Closes the slot's descriptor and frees the slot. Returns whether shutdown_all() ended it.
  bool release(Slot* slot);
  // The connection's last event is written: it no longer counts for wait_empty(). Separate from
  // release() so that the server thread cannot close the event pipe before that last event.
  void retire();
  // Wakes every blocked worker: shutdown(SHUT_RDWR) on each descriptor in use (traced).
  void shutdown_all(const EventPipe& events);
  // Blocks until no slot is in use.
  void wait_empty();
  // Blocks (bounded) until the workers that used the slots have left the kernel's task list, so
  // that when close() settles /proc/self/task is back where it was.
  void wait_workers_gone();

 private:
  const int capacity_;
  std::unique_ptr<Slot[]> slots_;
  int in_use_ = 0;  // claimed and not yet retired
  std::mutex mu_;
  std::condition_variable empty_;
};

}  // namespace ps
