#include "slot_table.h"

#include <unistd.h>
#include <cstdio>

#include "clock.h"

namespace ps {

SlotTable::SlotTable(int capacity, void* owner) : capacity_(capacity), slots_(new Slot[capacity]) {
  for (int i = 0; i < capacity_; ++i) slots_[i].owner = owner;  // and cfd = -1, as the lecture starts them
}

Slot* SlotTable::claim(int cfd, const sockaddr_storage& client, uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < capacity_; ++i) {
    Slot& slot = slots_[i];
    if (slot.cfd != -1) continue;
    slot.cfd = cfd;
    slot.client = client;
    slot.id = id;
    slot.aborted = false;
    slot.bytes.in.store(0);
    slot.bytes.out.store(0);
    ++in_use_;
    return &slot;
  }
  return nullptr;  // i == 100 in the lecture: refuse the connection
}

void SlotTable::set_thread(Slot* slot, uint32_t id, pthread_t thread) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot->cfd != -1 && slot->id == id) slot->thread = thread;
}

bool SlotTable::release(Slot* slot) {
  std::lock_guard<std::mutex> lock(mu_);
  bool aborted = slot->aborted;
  close(slot->cfd);
  slot->cfd = -1;
  return aborted;
}

void SlotTable::retire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_use_ == 0) empty_.notify_all();
}

void SlotTable::shutdown_all(const EventPipe& events) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < capacity_; ++i) {
    Slot& slot = slots_[i];
    if (slot.cfd == -1) continue;
    slot.aborted = true;
    shutdown(slot.cfd, SHUT_RDWR);
    events.trace(TraceCall::Shutdown, slot.cfd, 0, 0, slot.id, i);
  }
}

void SlotTable::wait_empty() {
  std::unique_lock<std::mutex> lock(mu_);
  empty_.wait(lock, [this] { return in_use_ == 0; });
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
