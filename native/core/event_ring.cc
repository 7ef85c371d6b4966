#include "event_ring.h"

namespace ps {

namespace {
constexpr uint64_t kMask = kRingCapacity - 1;
}  // namespace

EventRing::EventRing() {
  for (uint64_t i = 0; i < kRingCapacity; ++i) cells[i].seq.store(i, std::memory_order_relaxed);
}

bool EventRing::publish(const EventRecord& rec, bool& ring_doorbell) {
  ring_doorbell = false;
  uint64_t pos = head.load(std::memory_order_relaxed);
  RingCell* cell = nullptr;
  for (;;) {
    cell = &cells[pos & kMask];
    uint64_t seq = cell->seq.load(std::memory_order_acquire);
    auto lag = static_cast<int64_t>(seq - pos);
    if (lag == 0) {
      // The cell is free for this position: take the ticket (another writer may win it first).
      if (head.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    } else if (lag < 0) {
      return false;  // the cell still holds the record of the lap before: the ring is full
    } else {
      pos = head.load(std::memory_order_relaxed);  // another writer took this ticket: try the next
    }
  }
  cell->rec = rec;
  cell->seq.store(pos + 1, std::memory_order_release);
  // Dekker with park(): either the reader sees this record before it parks, or we see it parked.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (reader_parked.load(std::memory_order_relaxed) != 0 && reader_parked.exchange(0) == 1) ring_doorbell = true;
  return true;
}

size_t EventRing::drain(EventRecord* out, size_t max, bool writers_gone, uint64_t& holes) {
  uint64_t pos = tail.load(std::memory_order_relaxed);
  size_t n = 0;
  while (n < max) {
    RingCell& cell = cells[pos & kMask];
    uint64_t seq = cell.seq.load(std::memory_order_acquire);
    if (seq == pos + 1) {
      out[n++] = cell.rec;
    } else if (writers_gone && pos < head.load(std::memory_order_acquire)) {
      ++holes;  // a ticket taken by a writer that died before it published
    } else {
      break;  // not published yet (or nothing more)
    }
    cell.seq.store(pos + kRingCapacity, std::memory_order_release);  // free for the next lap
    ++pos;
  }
  tail.store(pos, std::memory_order_release);
  return n;
}

bool EventRing::park() {
  reader_parked.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint64_t pos = tail.load(std::memory_order_relaxed);
  if (cells[pos & kMask].seq.load(std::memory_order_acquire) != pos + 1) return true;
  reader_parked.store(0, std::memory_order_relaxed);
  return false;
}

}  // namespace ps
