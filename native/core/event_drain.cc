#include "event_drain.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <new>

#include "eintr.h"
#include "event_pipe.h"
#include "process_hygiene.h"

namespace ps {

// 1,024 records (64 KiB): the unit in which the backlog grows and shrinks.
struct EventDrain::Chunk {
  static constexpr size_t kRecords = 1024;
  Chunk* next = nullptr;
  size_t begin = 0;  // the next record JavaScript takes
  size_t end = 0;    // the next free place
  EventRecord records[kRecords];
};

SysError EventDrain::start(SharedPage* page, UniqueFd event_read, size_t limit) {
  page_ = page;
  limit_ = limit;
  event_read_ = std::move(event_read);
  if (!create_event_pipe(relay_read_, relay_write_)) return {errno, "pipe2"};
  wake_.reset(eventfd(0, EFD_CLOEXEC));
  if (!wake_.valid()) return {errno, "eventfd"};
  // Node's signals stay on Node's threads: this one blocks them all (it inherits the mask).
  sigset_t old;
  block_all_signals(&old);
  int rc = pthread_create(&thread_, nullptr, &EventDrain::thread_main, this);
  restore_signal_mask(&old);
  if (rc != 0) return {rc, "pthread_create"};
  running_ = true;
  return {};
}

void* EventDrain::thread_main(void* self) {
  pthread_setname_np(pthread_self(), kEventThreadName);
  static_cast<EventDrain*>(self)->run();
  return nullptr;
}

void EventDrain::run() {
  EventRing& ring = page_->events;
  bool parked = true;  // the ring starts parked: the first record published rings the doorbell
  int idle = 0;
  for (;;) {
    pollfd fds[2] = {{event_read_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int rc = poll(fds, 2, parked ? -1 : kDrainIntervalMs);
    if (rc < 0 && errno == EINTR) continue;  // every signal is blocked here; never, but harmless
    if (fds[1].revents != 0) return;         // stop(): Node is tearing down
    bool writers_gone = false;
    if (fds[0].revents != 0) {
      // Doorbell bytes (a writer found the ring parked: it is not any more), or EOF.
      char bell[64];
      ssize_t n = retry_eintr([&] { return read(event_read_.get(), bell, sizeof bell); });
      writers_gone = n == 0;
      parked = false;
      idle = 0;
    }
    bool full = false;
    size_t moved = move_from_ring(writers_gone, full);
    if (writers_gone) {
      relay_write_.reset();  // JavaScript sees EOF after the last record
      return;
    }
    // A full backlog is no quiet ring: keep the timer, JavaScript will take records again.
    if (moved > 0 || full) {
      idle = 0;
    } else if (!parked && ++idle >= kIdleDrainsBeforePark) {
      // Parks only if the ring is empty after all; else a record slipped in: keep draining.
      if (ring.park()) parked = true;
      idle = 0;
    }
  }
}

EventDrain::Chunk* EventDrain::writable_tail() {
  if (tail_ != nullptr && tail_->end < Chunk::kRecords) return tail_;
  Chunk* chunk = spare_ != nullptr ? spare_ : new (std::nothrow) Chunk();
  if (chunk == nullptr) return nullptr;
  spare_ = nullptr;
  chunk->next = nullptr;
  chunk->begin = chunk->end = 0;
  if (tail_ != nullptr)
    tail_->next = chunk;
  else
    head_ = chunk;
  tail_ = chunk;
  return chunk;
}

size_t EventDrain::move_from_ring(bool writers_gone, bool& full) {
  EventRing& ring = page_->events;
  size_t moved = 0;
  uint64_t holes = 0;
  bool ring_relay = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {
      // Once the writers are gone, everything left comes out: the ring holds at most its capacity.
      if (!writers_gone && held_ >= limit_) {
        full = true;
        break;
      }
      Chunk* tail = writable_tail();
      if (tail == nullptr) {
        full = true;  // no memory: the records stay in the ring, which drops past its capacity
        break;
      }
      size_t room = Chunk::kRecords - tail->end;
      if (!writers_gone) room = std::min(room, limit_ - held_);
      size_t n = ring.drain(tail->records + tail->end, room, writers_gone, holes);
      tail->end += n;
      held_ += n;
      moved += n;
      if (n < room) break;  // the ring is empty (or a writer has not published yet)
    }
    if (moved > 0 && js_waiting_) {
      js_waiting_ = false;
      ring_relay = true;
    }
  }
  if (holes > 0) page_->counters.eventsDropped.fetch_add(holes);
  if (ring_relay) {
    const char bell = 1;
    ssize_t ignored = retry_eintr([&] { return write(relay_write_.get(), &bell, 1); });
    (void)ignored;  // EAGAIN: bytes are waiting already, JavaScript will read them
  }
  return moved;
}

size_t EventDrain::take(EventRecord* out, size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  while (n < max && head_ != nullptr) {
    Chunk* chunk = head_;
    size_t k = std::min(max - n, chunk->end - chunk->begin);
    std::memcpy(static_cast<void*>(out + n), chunk->records + chunk->begin, k * sizeof(EventRecord));
    chunk->begin += k;
    n += k;
    if (chunk->begin < chunk->end) break;
    if (chunk == tail_ && chunk->end < Chunk::kRecords) {
      chunk->begin = chunk->end = 0;  // the last chunk, emptied: reused in place
      break;
    }
    head_ = chunk->next;
    if (head_ == nullptr) tail_ = nullptr;
    if (spare_ == nullptr)
      spare_ = chunk;
    else
      delete chunk;
  }
  held_ -= n;
  if (n == 0) js_waiting_ = true;
  return n;
}

void EventDrain::stop() {
  if (running_) {
    const uint64_t one = 1;
    ssize_t ignored = write(wake_.get(), &one, sizeof one);
    (void)ignored;
    pthread_join(thread_, nullptr);
    running_ = false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Chunk* chunk = head_; chunk != nullptr;) {
    Chunk* next = chunk->next;
    delete chunk;
    chunk = next;
  }
  head_ = tail_ = nullptr;
  delete spare_;
  spare_ = nullptr;
  held_ = 0;
}

}  // namespace ps
