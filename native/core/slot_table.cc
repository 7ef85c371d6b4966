#include "slot_table.h"

#include <sched.h>
#include <unistd.h>
#include <cstdio>

#include "clock.h"

namespace ps {

namespace {

// Moves `slot` from `from` to `to`, waiting out another party's short transition (a worker's
// close(), or shutdown_all()'s shutdown(): a few microseconds, and only while the server closes).
void transition(Slot* slot, SlotState from, SlotState to) {
  SlotState expected = from;
  while (!slot->state.compare_exchange_weak(expected, to, std::memory_order_acq_rel)) {
    expected = from;
    sched_yield();
  }
}

}  // namespace

SlotTable::SlotTable(int capacity, void* owner) : capacity_(capacity), slots_(new Slot[capacity]) {
  for (int i = 0; i < capacity_; ++i) slots_[i].owner = owner;  // and cfd = -1, as the lecture starts them
}

Slot* SlotTable::claim(int cfd, const sockaddr_storage& client, uint32_t id, int32_t door_ticket) {
  for (int i = 0; i < capacity_; ++i) {
    Slot& slot = slots_[i];
    // Free is final until we claim it: the worker that freed it is done with every field.
    if (slot.state.load(std::memory_order_acquire) != SlotState::Free) continue;
    slot.cfd = cfd;
    slot.client = client;
    slot.id = id;
    slot.door_ticket = door_ticket;
    slot.aborted = false;
    slot.announced = false;
    slot.bytes.in.store(0);
    slot.bytes.out.store(0);
    in_use_.fetch_add(1);
    slot.state.store(SlotState::InUse, std::memory_order_release);
    return &slot;
  }
  return nullptr;  // i == 100 in the lecture: refuse the connection
}

bool SlotTable::release(Slot* slot) {
  transition(slot, SlotState::InUse, SlotState::Ending);
  bool aborted = slot->aborted;
  close(slot->cfd);
  slot->cfd = -1;
  slot->state.store(SlotState::Free, std::memory_order_release);
  return aborted;
}

void SlotTable::retire() { in_use_.fetch_sub(1); }

void SlotTable::shutdown_all(const EventPipe& events) {
  for (int i = 0; i < capacity_; ++i) {
    Slot& slot = slots_[i];
    SlotState expected = SlotState::InUse;
    if (!slot.state.compare_exchange_strong(expected, SlotState::Aborting, std::memory_order_acq_rel)) continue;
    slot.aborted = true;
    shutdown(slot.cfd, SHUT_RDWR);
    events.trace(TraceCall::Shutdown, slot.cfd, 0, 0, slot.id, i);
    slot.state.store(SlotState::InUse, std::memory_order_release);
  }
}

void SlotTable::wait_empty() {
  while (in_use_.load() != 0) usleep(1000);
}

void SlotTable::wait_workers_gone() {
  // A detached thread cannot be joined. After its last store (release()) it still runs glibc's
  // exit path for a few microseconds; wait until /proc/self/task no longer lists it (2 s at most).
  const int64_t give_up = monotonic_ms() + 2000;
  for (int i = 0; i < capacity_; ++i) {
    pid_t tid = slots_[i].tid;
    if (tid == 0) continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", static_cast<int>(tid));
    for (;;) {
      if (access(path, F_OK) != 0) break;
      if (monotonic_ms() >= give_up) return;
      usleep(200);
    }
  }
}

}  // namespace ps
