#include "room_gate.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <climits>
#include <cstring>
#include <ctime>

namespace ps {

const char* when_full_name(WhenFull w) { return w == WhenFull::Wait ? "wait" : "refuse"; }

bool parse_when_full(const char* name, WhenFull& out) {
  if (strcmp(name, "refuse") == 0) {
    out = WhenFull::Refuse;
  } else if (strcmp(name, "wait") == 0) {
    out = WhenFull::Wait;
  } else {
    return false;
  }
  return true;
}

// Not FUTEX_PRIVATE_FLAG: the word may be in the page the master's processes share.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex is a plain 32-bit word");
  // EAGAIN (the word changed first) and EINTR are both "look again": the caller loops.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, expected, nullptr, nullptr, 0);
}

void futex_wait_ms(std::atomic<uint32_t>& word, uint32_t expected, int64_t ms) {
  const timespec timeout{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, expected, &timeout, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void room_made(RoomGate& gate) {
  if (gate.waiters.load() == 0) return;
  gate.generation.fetch_add(1);
  futex_wake_all(gate.generation);
}

void open_gate(RoomGate& gate) {
  gate.generation.fetch_add(1);
  futex_wake_all(gate.generation);
}

}  // namespace ps
