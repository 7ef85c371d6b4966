// ring-doorbells: the event ring's park/publish handshake (native/core/event_ring.cc), stressed on
// real threads, counting lost doorbells. Run by test/event-ring.test.ts; built by CMake into
// build/tests/ in a checkout (PS_BUILD_TESTS).
//
// Why a test of its own: the handshake is a Dekker pattern — the writer stores its record's
// sequence then loads `reader_parked`, the reader stores `reader_parked` then loads the sequence —
// and only the std::atomic_thread_fence(seq_cst) between each store and load keeps the CPU from
// reordering them (x86 reorders a store with a later load: the store buffer). Without it both can
// miss each other: the reader parks on a record it did not see, the writer sees no parked reader,
// and no doorbell rings — the record waits until some later event, or forever. ThreadSanitizer
// does not model fences (g++ says so when it compiles the ring), so it cannot find this; a lost
// doorbell is found only by making the two sides meet, many times, on two CPUs.
//
// Each round starts both threads at once (a spin barrier), with a random few spins of jitter so
// that their windows overlap in every alignment: the writer publishes one record, the reader
// parks. Then the rule is checked: a reader that parked must have been rung for the record it
// parked on. The same harness measures, as a control, how often this machine reorders a plain
// store with a later load (the same pattern with relaxed atomics and no fence, in every round):
// rounds that never overlap closely enough prove nothing, so the run goes on until it has seen
// that many reorderings — the evidence that a missing fence would have shown here.
//
// Usage: ring-doorbells [min-rounds] [min-control-reorders] [max-seconds]  (200000 1000 20)
// Prints one JSON line. Exits 1 if a doorbell was lost; 3 if the time ran out before the control
// had reordered often enough (inconclusive); 0 otherwise.
#include <pthread.h>
#include <sched.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/event_ring.h"

namespace {

using Clock = std::chrono::steady_clock;

// A barrier for two threads that spins (a futex would take far longer than the windows we want to
// overlap), yielding now and then so that a descheduled partner gets the CPU back.
class SpinBarrier {
 public:
  void arrive_and_wait(uint64_t generation_target) {
    arrived_.fetch_add(1, std::memory_order_acq_rel);
    unsigned spins = 0;
    while (arrived_.load(std::memory_order_acquire) < generation_target) {
      if (++spins % 1024 == 0) sched_yield();
    }
  }

 private:
  std::atomic<uint64_t> arrived_{0};
};

// xorshift: cheap per-thread jitter, no shared state.
uint32_t next_random(uint32_t& state) {
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return state;
}

void jitter(uint32_t& state) {
  uint32_t spins = next_random(state) % 64;
  for (volatile uint32_t i = 0; i < spins; i = i + 1) {
  }
}

struct Shared {
  ps::EventRing* ring = nullptr;
  SpinBarrier barrier;
  std::atomic<bool> stop{false};
  // The control: Dekker on two plain words, no fence.
  std::atomic<int> litmus_x{0};
  std::atomic<int> litmus_y{0};
  // Per round, written by each side before the second barrier, read after it.
  bool rang = false;    // the writer's publish said: the reader was parked, ring the doorbell
  bool parked = false;  // the reader's park() said: nothing to read, wait for the doorbell
  int litmus_writer_saw = 0;
  int litmus_reader_saw = 0;
};

// Barriers per round (start and end of the ring's part, start and end of the control), each two arrivals.
constexpr int kPhases = 4;

void* writer_main(void* arg) {
  auto* s = static_cast<Shared*>(arg);
  uint32_t random = 0x9e3779b9u;
  ps::EventRecord rec;
  rec.type = static_cast<uint8_t>(ps::EventType::Connection);
  for (uint64_t round = 0;; ++round) {
    uint64_t base = round * kPhases * 2;
    s->barrier.arrive_and_wait(base + 2);
    if (s->stop.load(std::memory_order_relaxed)) break;
    jitter(random);
    rec.id = static_cast<uint32_t>(round);
    bool ring_doorbell = false;
    if (!s->ring->publish(rec, ring_doorbell)) abort();  // never full: the reader drains every round
    s->rang = ring_doorbell;
    s->barrier.arrive_and_wait(base + 4);

    s->barrier.arrive_and_wait(base + 6);
    jitter(random);
    s->litmus_x.store(1, std::memory_order_relaxed);
    s->litmus_writer_saw = s->litmus_y.load(std::memory_order_relaxed);
    s->barrier.arrive_and_wait(base + 8);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t min_rounds = argc > 1 ? strtoull(argv[1], nullptr, 10) : 200000;
  uint64_t min_reorders = argc > 2 ? strtoull(argv[2], nullptr, 10) : 1000;
  double seconds = argc > 3 ? strtod(argv[3], nullptr) : 20;
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  // The ring lives in the shared page in production; here on the heap, aligned as it needs.
  auto ring = std::make_unique<ps::EventRing>();
  Shared s;
  s.ring = ring.get();

  pthread_t writer;
  if (pthread_create(&writer, nullptr, &writer_main, &s) != 0) {
    perror("pthread_create");
    return 2;
  }
  uint32_t random = 0x7f4a7c15u;
  uint64_t done = 0, parked = 0, rang = 0, lost = 0, spurious = 0, reorders = 0;
  ps::EventRecord out[2];
  bool conclusive = false;
  for (uint64_t round = 0;; ++round) {
    uint64_t base = round * kPhases * 2;
    // Between rounds (only this thread runs): the ring is empty and the reader awake.
    ring->reader_parked.store(0, std::memory_order_relaxed);
    s.litmus_x.store(0, std::memory_order_relaxed);
    s.litmus_y.store(0, std::memory_order_relaxed);
    conclusive = round >= min_rounds && reorders >= min_reorders;
    if (conclusive || ((round & 1023) == 0 && Clock::now() > deadline)) s.stop.store(true, std::memory_order_relaxed);
    s.barrier.arrive_and_wait(base + 2);
    if (s.stop.load(std::memory_order_relaxed)) break;
    jitter(random);
    s.parked = ring->park();
    s.barrier.arrive_and_wait(base + 4);

    // The rule: a reader that parked is rung. (Rung without parking is harmless: a spare byte.)
    if (s.parked) ++parked;
    if (s.rang) ++rang;
    if (s.parked && !s.rang) ++lost;
    if (!s.parked && s.rang) ++spurious;
    uint64_t holes = 0;
    if (ring->drain(out, 2, false, holes) != 1 || out[0].id != static_cast<uint32_t>(round)) {
      fprintf(stderr, "round %llu: the record is not in the ring\n", static_cast<unsigned long long>(round));
      return 2;
    }

    s.barrier.arrive_and_wait(base + 6);
    jitter(random);
    s.litmus_y.store(1, std::memory_order_relaxed);
    s.litmus_reader_saw = s.litmus_x.load(std::memory_order_relaxed);
    s.barrier.arrive_and_wait(base + 8);
    if (s.litmus_writer_saw == 0 && s.litmus_reader_saw == 0) ++reorders;  // each missed the other's store
    ++done;
  }
  pthread_join(writer, nullptr);
  printf(
      "{\"rounds\":%llu,\"parked\":%llu,\"rang\":%llu,\"spurious\":%llu,\"lost\":%llu,\"controlReorders\":%llu,"
      "\"conclusive\":%s}\n",
      static_cast<unsigned long long>(done), static_cast<unsigned long long>(parked),
      static_cast<unsigned long long>(rang), static_cast<unsigned long long>(spurious),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(reorders), conclusive ? "true" : "false");
  if (lost != 0) return 1;
  return conclusive ? 0 : 3;
}
