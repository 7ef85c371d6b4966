// A load generator that drives an echo server from one thread: every connection is a
// non-blocking socket in a single epoll set, so the client costs at most one core and its own
// CPU time (reported) shows whether it, and not the server, was the bottleneck.
//
//   pingpong: C persistent connections, each in a closed loop: send S bytes, wait for all S back.
//   churn:    T concurrent clients, each: connect, send S, read S back, close; again.
//   eof:      T concurrent clients, each: connect, read until the server closes, close; again.
//             For servers that speak first and hang up (daytime, time, a program run per
//             connection such as /bin/true): what they send is counted, not checked.
//   rpc:      T concurrent clients, each: connect, send the request "S\n", read exactly the S-byte
//             reply, close (first: the TIME_WAIT is the client's); again. UNP ch. 30's client
//             (client.c), for the rpc handler of native/core/service.h. S is 1 or more.
//
// Every byte that comes back is checked against what was sent (rpc: against chargen's stream,
// which the rpc reply is; not in eof mode), unless expect is Any: then only how many came back
// (UNP's own servers answer rpc with whatever their buffer held). No N-API here.
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/sys_error.h"

namespace ps {

// The load thread's name (comm): `top -H` tells it from the server's threads, and a test can see
// that none is left once a run has resolved. Exported as constants.threadNames.loadgen.
inline constexpr char kLoadThreadName[] = "ps-loadgen";

enum class LoadMode { PingPong, Churn, Eof, Rpc };
// What comes back: the bytes sent (rpc: chargen's stream), those with ASCII a–z as A–Z, or any
// bytes, only counted.
enum class LoadExpect { Echo, Upper, Any };

struct LoadOptions {
  LoadMode mode = LoadMode::PingPong;
  std::string host = "127.0.0.1";  // numeric IPv4 or IPv6
  int port = 0;
  int connections = 1;
  size_t size = 64;  // bytes per message; rpc: the reply size asked for
  int64_t durationMs = 1000;
  LoadExpect expect = LoadExpect::Echo;
};

// A round trip with no progress at all (not a byte sent or received, or a connect not
// answered) for this long is a stall: counted as an error, the connection is dropped. Longer
// than the first SYN retransmission (1 s), so a connect that waited for a full backlog still
// counts as slow, not failed. The same bound caps the drain after the duration, so a run always
// ends by durationMs + kStallMs (+ one timer tick), under the promised durationMs + 2 s.
constexpr int64_t kStallMs = 1500;

// Latencies with two significant digits over 1 µs .. 60 s, HdrHistogram's layout: a value v
// falls into bucket b = the power of two above it (relative to the sub-bucket range), and
// within that bucket into one of kSubBuckets/2 linear steps. Recording is O(1) with no
// allocation, which matters when it runs once per round trip.
class LatencyHistogram {
 public:
  static constexpr int64_t kLowestNs = 1000;               // 1 µs
  static constexpr int64_t kHighestNs = 60'000'000'000LL;  // 60 s
  // 256 sub-buckets: 128 distinct steps per power of two, i.e. < 1% error, better than the
  // two significant digits promised.
  static constexpr int kSubBucketBits = 8;
  static constexpr int64_t kSubBuckets = int64_t{1} << kSubBucketBits;

  LatencyHistogram();

  void record(int64_t ns);
  uint64_t count() const { return total_; }
  int64_t max_ns() const { return max_; }
  double mean_ns() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }
  // The highest value equivalent to the one at `percentile` (0..100], never above max_ns().
  int64_t percentile_ns(double percentile) const;

 private:
  size_t index_of(int64_t v) const;
  int64_t highest_equivalent(size_t index) const;

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  // Exact, not bucketed: the mean and max a reader compares with the percentiles. 64 bits hold
  // it: the round trips of one connection never overlap, so the sum is at most connections ×
  // run time = 10^4 × ~6·10^14 ns, far below 1.8·10^19.
  uint64_t sum_ = 0;
  int64_t max_ = 0;
};

struct LoadLatency {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;  // microseconds
};

struct LoadResult {
  SysError error;         // set only when the run could not start at all (epoll_create1…)
  double durationMs = 0;  // measured: from the first connect to the last socket closed
  uint64_t messages = 0;  // completed, verified round trips (churn: connect + echo cycles; rpc: exchanges)
  uint64_t bytes = 0;     // bytes of those messages (each counted once, as sent; rpc: the replies)
  uint64_t connects = 0;  // connections established
  uint64_t errors = 0;    // failed connects, stalls, other socket errors
  uint64_t resets = 0;    // ECONNRESET, EPIPE, EOF before the whole reply (rpc: a short reply, a refusal)
  uint64_t verifyFailures = 0;
  LoadLatency latencyUs;
  double cpuUserMs = 0, cpuSystemMs = 0;  // this thread only (RUSAGE_THREAD)
};

// Runs the load on the calling thread until durationMs has passed and the messages in flight are
// answered (or stalled). `cancel`, when set by another thread, ends the run early.
LoadResult run_load(const LoadOptions& options, const std::atomic<bool>* cancel);

// run_load() on a thread of its own, created with every signal blocked (so Node's signals stay
// on Node's threads). `done(context)` is called on that thread once result() is final; the
// owner then calls join().
class LoadThread {
 public:
  using Done = void (*)(void* context);

  LoadThread() = default;
  ~LoadThread();
  LoadThread(const LoadThread&) = delete;
  LoadThread& operator=(const LoadThread&) = delete;

  SysError start(const LoadOptions& options, Done done, void* context);
  // Asks a running load to stop at its next wake-up (≤ one timer tick).
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }
  // pthread_join, then waits (bounded) until the kernel has dropped the thread from
  // /proc/self/task: join returns when glibc's exit path cleared the tid, a moment before that.
  void join();
  const LoadResult& result() const { return result_; }

 private:
  static void* main(void* arg);

  LoadOptions options_;
  LoadResult result_;
  Done done_ = nullptr;
  void* context_ = nullptr;
  std::atomic<bool> cancel_{false};
  std::atomic<pid_t> tid_{0};
  pthread_t thread_{};
  bool started_ = false;
};

}  // namespace ps
