// The one clock: CLOCK_MONOTONIC, which every event record is stamped with, so that times are
// comparable across Node, the fork master and its children. Async-signal-safe (clock_gettime is
// on the signal-safety(7) list).
#pragma once

#include <cstdint>
#include <ctime>

namespace ps {

inline uint64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

inline int64_t monotonic_ms() { return static_cast<int64_t>(monotonic_ns() / 1000000ull); }

}  // namespace ps
