#include "loadgen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>

#include "../core/clock.h"
#include "../core/eintr.h"
#include "../core/listen_socket.h"
#include "../core/process_hygiene.h"
#include "../core/service.h"
#include "../core/unique_fd.h"

namespace ps {

// ---------------------------------------------------------------------------------------------
// LatencyHistogram

namespace {

// Unit 1 ns (HdrHistogram's unit magnitude 0): the smallest step is then set by the sub-bucket
// count alone, so a 15 µs loopback round trip is resolved to 64 ns, not to the unit.
constexpr int kHalfBits = LatencyHistogram::kSubBucketBits - 1;
constexpr int64_t kHalfCount = int64_t{1} << kHalfBits;
constexpr int kLeadingZeroBase = 64 - kHalfBits - 1;

int bucket_of(int64_t v) {
  return kLeadingZeroBase - __builtin_clzll(static_cast<uint64_t>(v) | (LatencyHistogram::kSubBuckets - 1));
}

size_t bucket_count_for(int64_t highest) {
  int64_t smallest_untrackable = LatencyHistogram::kSubBuckets;
  size_t buckets = 1;
  while (smallest_untrackable <= highest) {
    smallest_untrackable <<= 1;
    ++buckets;
  }
  return buckets;
}

}  // namespace

LatencyHistogram::LatencyHistogram()
    : counts_((bucket_count_for(kHighestNs) + 1) * static_cast<size_t>(kHalfCount), 0) {}

size_t LatencyHistogram::index_of(int64_t v) const {
  int bucket = bucket_of(v);
  int64_t sub = v >> bucket;
  return static_cast<size_t>((int64_t{bucket + 1} << kHalfBits) + (sub - kHalfCount));
}

int64_t LatencyHistogram::highest_equivalent(size_t index) const {
  int64_t bucket = static_cast<int64_t>(index >> kHalfBits) - 1;
  int64_t sub = static_cast<int64_t>(index & (kHalfCount - 1)) + kHalfCount;
  if (bucket < 0) {
    sub -= kHalfCount;
    bucket = 0;
  }
  int64_t lowest = sub << bucket;
  return lowest + (int64_t{1} << bucket) - 1;
}

void LatencyHistogram::record(int64_t ns) {
  // Out-of-range values are clamped, not dropped: a 0-ns reading (coarse clock) or a 70-s one
  // still happened and must count in the percentiles.
  int64_t v = std::clamp(ns, kLowestNs, kHighestNs);
  ++counts_[index_of(v)];
  ++total_;
  sum_ += static_cast<uint64_t>(v);
  max_ = std::max(max_, v);
}

int64_t LatencyHistogram::percentile_ns(double percentile) const {
  if (total_ == 0) return 0;
  double wanted = std::ceil(percentile / 100.0 * static_cast<double>(total_));
  uint64_t target = static_cast<uint64_t>(std::clamp(wanted, 1.0, static_cast<double>(total_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    // The bucket's upper edge may lie above the exact maximum: clamp, so p99 <= max always holds.
    if (seen >= target) return std::min(highest_equivalent(i), max_);
  }
  return max_;
}

// ---------------------------------------------------------------------------------------------
// The engine

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kStallNs = kStallMs * kNsPerMs;
// How often stalls are looked for: a scan of every connection, so O(connections) per tick
// instead of a timer per connection. It is also the latency of cancel().
constexpr int64_t kTickNs = 50 * kNsPerMs;
// A failed connection is reopened after this pause. Reopening at once would turn a refusing
// port into a busy loop that measures only the failure path and fills the ephemeral port range
// with TIME_WAIT sockets.
constexpr int64_t kRetryPauseNs = 5 * kNsPerMs;
// Bytes per recv(): loopback's 64 KiB segments, and small enough to stay in cache while compared.
constexpr size_t kChunk = 64 * 1024;
// Every message is a window of one pseudo-random sequence of this period, starting at a
// pseudo-random offset of its own (see Payload).
constexpr size_t kPeriod = 1024 * 1024;
constexpr int kMaxEvents = 256;

// Signed, for arithmetic on deadlines.
int64_t now_ns() { return static_cast<int64_t>(monotonic_ns()); }

// splitmix64's finalizer: a well-mixed 64-bit value from a counter.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The bytes every message is cut from, generated once per run. A message is the window
// [offset, offset + size) of `sent`, its offset drawn per message from (connection, message
// number): the pattern differs from message to message, so a server that replays an older
// reply or mixes two connections is caught, yet sending is a plain send() from this buffer and
// checking a reply is a memcmp() against `expected`. Generating per message instead made the
// client the bottleneck with large messages.
//
// Byte values cover 0..255 (a server must be 8-bit clean), except every 8th byte, a lowercase
// letter; offsets are multiples of 8, so even a 1-byte message starts with one and a server that
// upper-cases (or otherwise touches letters) is caught.
class Payload {
 public:
  Payload(size_t size, bool upper) : sent_(kPeriod + size) {
    for (size_t i = 0; i < kPeriod; i += 8) {
      uint64_t word = mix(i);
      for (size_t k = 0; k < 8; ++k) sent_[i + k] = static_cast<unsigned char>(word >> (k * 8));
      sent_[i] = static_cast<unsigned char>('a' + sent_[i] % 26);
    }
    // Windows that start near the end of the period continue from its beginning.
    std::copy(sent_.begin(), sent_.begin() + static_cast<std::ptrdiff_t>(size), sent_.begin() + kPeriod);
    if (upper) {
      expected_ = sent_;
      for (unsigned char& b : expected_) {
        if (b >= 'a' && b <= 'z') b = static_cast<unsigned char>(b - 'a' + 'A');
      }
    }
  }

  static size_t offset_for(uint32_t connection, uint64_t message) {
    return (mix((static_cast<uint64_t>(connection) << 40) ^ message) % (kPeriod / 8)) * 8;
  }
  const unsigned char* sent(size_t offset) const { return sent_.data() + offset; }
  const unsigned char* expected(size_t offset) const { return (expected_.empty() ? sent_ : expected_).data() + offset; }

 private:
  std::vector<unsigned char> sent_;
  std::vector<unsigned char> expected_;  // empty when it equals sent_ (expect: echo)
};

enum class ConnState : uint8_t {
  Idle,        // no socket; about to get one
  Backoff,     // no socket; reopened at retry_ns
  Connecting,  // non-blocking connect() in progress (EPOLLOUT reports the outcome)
  Active,      // a message is in flight
  Done,        // the run is over for this connection
};

enum class Failure { Connect, Stall, Reset, Verify, Other };

struct Conn {
  UniqueFd fd;
  ConnState state = ConnState::Idle;
  bool want_out = false;  // EPOLLOUT is in the interest set (a send came up short)
  // Bumped for every new socket and carried in the epoll event: an event queued for a socket
  // that was closed meanwhile must not be applied to its successor in the same slot.
  uint32_t gen = 0;
  uint64_t msg_no = 0;
  size_t offset = 0;  // where this message's window starts in the Payload
  size_t sent = 0, received = 0;
  int64_t started_ns = 0;   // latency origin: the first send (pingpong) or the connect (churn)
  int64_t progress_ns = 0;  // last time a byte moved or the connect began
  int64_t retry_ns = 0;
};

bool is_live(ConnState s) { return s == ConnState::Connecting || s == ConnState::Active; }

class Engine {
 public:
  Engine(const LoadOptions& options, const std::atomic<bool>* cancel, LoadResult& result)
      : o_(options),
        cancel_(cancel),
        r_(result),
        conns_(static_cast<size_t>(options.connections)),
        payload_(options.size, options.expect == LoadExpect::Upper),
        recv_buf_(kChunk) {
    if (rpc()) {
      // Every client asks for the same reply: the request is one line, the reply chargen's stream.
      request_ = std::to_string(options.size) + "\n";
      rpc_reply_.resize(options.size);
      chargen_fill(ChargenCursor{}, reinterpret_cast<char*>(rpc_reply_.data()), rpc_reply_.size());
    }
  }

  SysError setup();
  void run();

 private:
  bool pingpong() const { return o_.mode == LoadMode::PingPong; }
  bool until_eof() const { return o_.mode == LoadMode::Eof; }
  bool rpc() const { return o_.mode == LoadMode::Rpc; }
  // Whether what comes back is compared byte for byte (expect Any: only counted).
  bool checks() const { return o_.expect != LoadExpect::Any; }
  // What one message sends: `size` bytes of the payload, or (rpc) the request line.
  size_t send_len() const { return rpc() ? request_.size() : o_.size; }
  const void* send_from(const Conn& c) const {
    return rpc() ? static_cast<const void*>(request_.data() + c.sent) : payload_.sent(c.offset + c.sent);
  }
  void pull_reply(uint32_t i, int64_t now);
  void set_state(Conn& c, ConnState s);
  void open(uint32_t i, int64_t now);
  void connected(uint32_t i, int64_t now);
  void finish_connect(uint32_t i, int64_t now);
  void begin_message(uint32_t i, int64_t now);
  void push(uint32_t i, int64_t now);
  void pull(uint32_t i, int64_t now);
  void complete(uint32_t i, int64_t now);
  void fail(uint32_t i, Failure why, int64_t now);
  void close_conn(Conn& c);
  bool watch(uint32_t i, int op, bool out);
  void begin_stop();
  void scan_stalls(int64_t now);
  void retry_due(int64_t now);

  const LoadOptions& o_;
  const std::atomic<bool>* cancel_;
  LoadResult& r_;
  std::vector<Conn> conns_;
  Payload payload_;
  std::vector<unsigned char> recv_buf_;
  std::string request_;                   // rpc: "size\n"
  std::vector<unsigned char> rpc_reply_;  // rpc: the reply expected, byte for byte
  LatencyHistogram hist_;
  UniqueFd ep_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::deque<uint32_t> retry_queue_;  // FIFO = sorted by retry_ns, the pause being constant
  size_t live_ = 0;
  bool stopping_ = false;
};

SysError Engine::setup() {
  addr_len_ = make_sockaddr(o_.host, o_.port, addr_);
  if (addr_len_ == 0) return {EINVAL, "inet_pton"};
  ep_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ep_.valid()) return {errno, "epoll_create1"};
  return {};
}

void Engine::set_state(Conn& c, ConnState s) {
  if (is_live(c.state) && !is_live(s)) --live_;
  if (!is_live(c.state) && is_live(s)) ++live_;
  c.state = s;
}

bool Engine::watch(uint32_t i, int op, bool out) {
  Conn& c = conns_[i];
  epoll_event ev{};
  ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
  ev.data.u64 = (static_cast<uint64_t>(c.gen) << 32) | i;
  if (epoll_ctl(ep_.get(), op, c.fd.get(), &ev) != 0) return false;
  c.want_out = out;
  return true;
}

void Engine::close_conn(Conn& c) {
  // Closing removes the descriptor from the epoll set; the generation makes any event already
  // collected for it in this batch harmless.
  c.fd.reset();
  c.want_out = false;
}

void Engine::open(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  ++c.gen;
  c.started_ns = now;
  c.progress_ns = now;
  c.fd.reset(socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.fd.valid()) return fail(i, Failure::Connect, now);  // EMFILE…: pause, try again
  // Small messages must leave at once: Nagle would hold the next one back waiting for an ACK
  // and the benchmark would measure the delayed-ACK timer instead of the server.
  int one = 1;
  setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  if (rc == 0) {
    // Loopback may finish the handshake inside connect() itself.
    if (!watch(i, EPOLL_CTL_ADD, false)) return fail(i, Failure::Other, now);
    set_state(c, ConnState::Connecting);
    return connected(i, now);
  }
  if (errno != EINPROGRESS) return fail(i, Failure::Connect, now);
  if (!watch(i, EPOLL_CTL_ADD, true)) return fail(i, Failure::Other, now);
  set_state(c, ConnState::Connecting);
}

void Engine::finish_connect(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return fail(i, Failure::Connect, now);
  if (!watch(i, EPOLL_CTL_MOD, false)) return fail(i, Failure::Other, now);
  connected(i, now);
}

void Engine::connected(uint32_t i, int64_t now) {
  ++r_.connects;
  Conn& c = conns_[i];
  if (stopping_ && pingpong()) {
    // The duration is over and no message is in flight: nothing left to measure here.
    close_conn(c);
    return set_state(c, ConnState::Done);
  }
  set_state(c, ConnState::Active);
  begin_message(i, now);
}

void Engine::begin_message(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  c.offset = Payload::offset_for(i, c.msg_no);
  c.sent = 0;
  c.received = 0;
  if (pingpong()) c.started_ns = now;
  c.progress_ns = now;
  if (until_eof()) {
    c.sent = o_.size;  // nothing to send: the server speaks first (or not at all) and closes
    return;
  }
  push(i, now);
}

void Engine::push(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  while (c.sent < send_len()) {
    ssize_t w = retry_eintr([&] { return send(c.fd.get(), send_from(c), send_len() - c.sent, MSG_NOSIGNAL); });
    if (w > 0) {
      c.sent += static_cast<size_t>(w);
      c.progress_ns = now;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The server is not reading as fast as we write (large messages): resume on EPOLLOUT,
      // while EPOLLIN keeps draining its echo so neither side can block the other.
      if (!c.want_out && !watch(i, EPOLL_CTL_MOD, true)) fail(i, Failure::Other, now);
      return;
    }
    return fail(i, (errno == EPIPE || errno == ECONNRESET) ? Failure::Reset : Failure::Other, now);
  }
  if (c.want_out && !watch(i, EPOLL_CTL_MOD, false)) fail(i, Failure::Other, now);
}

// rpc, as UNP's client: the reply, checked against chargen's stream, read to exactly its size; then
// complete() closes first (the server, serving requests until its client closes, reads EOF then),
// so the TIME_WAIT is the client's. An EOF before the last byte is a short reply (a refusal).
void Engine::pull_reply(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  for (;;) {
    ssize_t n = retry_eintr([&] { return recv(c.fd.get(), recv_buf_.data(), kChunk, 0); });
    if (n > 0) {
      auto got = static_cast<size_t>(n);
      if (got > o_.size - c.received) return fail(i, Failure::Verify, now);  // more than asked for
      if (checks() && memcmp(recv_buf_.data(), rpc_reply_.data() + c.received, got) != 0) {
        return fail(i, Failure::Verify, now);
      }
      c.received += got;
      c.progress_ns = now;
      if (c.received == o_.size) return complete(i, now);
      continue;
    }
    if (n == 0) return fail(i, Failure::Reset, now);  // EOF before the whole reply
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return fail(i, errno == ECONNRESET ? Failure::Reset : Failure::Other, now);
  }
}

void Engine::pull(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  if (rpc()) return pull_reply(i, now);
  if (until_eof()) {
    for (;;) {
      ssize_t n = retry_eintr([&] { return recv(c.fd.get(), recv_buf_.data(), kChunk, 0); });
      if (n > 0) {
        c.received += static_cast<size_t>(n);
        c.progress_ns = now;
        continue;
      }
      if (n == 0) return complete(i, now);  // the server closed: the cycle is done
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return fail(i, errno == ECONNRESET ? Failure::Reset : Failure::Other, now);
    }
  }
  for (;;) {
    ssize_t n = retry_eintr([&] { return recv(c.fd.get(), recv_buf_.data(), kChunk, 0); });
    if (n > 0) {
      auto got = static_cast<size_t>(n);
      // More than we sent is a failure as surely as a wrong byte (the server answered twice,
      // or appended something).
      if (got > o_.size - c.received) return fail(i, Failure::Verify, now);
      if (checks() && memcmp(recv_buf_.data(), payload_.expected(c.offset + c.received), got) != 0) {
        return fail(i, Failure::Verify, now);
      }
      c.received += got;
      c.progress_ns = now;
      if (c.received == o_.size) {
        complete(i, now);
        // A new message (pingpong) may already have its reply waiting; the next epoll_wait
        // reports it (level-triggered), which keeps one busy connection from starving the rest.
        return;
      }
      continue;
    }
    if (n == 0) return fail(i, Failure::Reset, now);  // EOF before the whole reply
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return fail(i, errno == ECONNRESET ? Failure::Reset : Failure::Other, now);
  }
}

void Engine::complete(uint32_t i, int64_t now) {
  Conn& c = conns_[i];
  ++r_.messages;
  r_.bytes += until_eof() ? c.received : o_.size;
  hist_.record(now - c.started_ns);
  ++c.msg_no;
  if (pingpong()) {
    if (!stopping_) return begin_message(i, now);
    close_conn(c);
    return set_state(c, ConnState::Done);
  }
  // Churn, eof, rpc: every byte is read, so close() sends a FIN, not a RST; the server sees a clean
  // EOF. (rpc: before the server closes, as UNP's client does: "TIME_WAIT on client, not server".)
  close_conn(c);
  set_state(c, ConnState::Idle);
  if (stopping_) return set_state(c, ConnState::Done);
  open(i, now);
}

void Engine::fail(uint32_t i, Failure why, int64_t now) {
  switch (why) {
    case Failure::Connect:
    case Failure::Stall:
    case Failure::Other:
      ++r_.errors;
      break;
    case Failure::Reset:
      ++r_.resets;
      break;
    case Failure::Verify:
      ++r_.verifyFailures;
      break;
  }
  Conn& c = conns_[i];
  close_conn(c);
  if (stopping_) return set_state(c, ConnState::Done);
  set_state(c, ConnState::Backoff);
  c.retry_ns = now + kRetryPauseNs;
  retry_queue_.push_back(i);
}

void Engine::retry_due(int64_t now) {
  while (!retry_queue_.empty()) {
    uint32_t i = retry_queue_.front();
    Conn& c = conns_[i];
    if (c.state == ConnState::Backoff && c.retry_ns > now) return;
    retry_queue_.pop_front();
    if (c.state == ConnState::Backoff) open(i, now);
  }
}

void Engine::begin_stop() {
  stopping_ = true;
  retry_queue_.clear();
  for (Conn& c : conns_) {
    if (c.state == ConnState::Idle || c.state == ConnState::Backoff) set_state(c, ConnState::Done);
    // Pingpong: a connection still connecting has no message in flight, so it is not drained.
    // Churn: connecting is part of a cycle already begun, which the drain lets finish.
    if (c.state == ConnState::Connecting && pingpong()) {
      close_conn(c);
      set_state(c, ConnState::Done);
    }
  }
}

void Engine::scan_stalls(int64_t now) {
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (is_live(c.state) && now - c.progress_ns >= kStallNs) fail(i, Failure::Stall, now);
  }
}

void Engine::run() {
  const int64_t start = now_ns();
  const int64_t end = start + o_.durationMs * kNsPerMs;
  // The drain after `end` never outlasts one stall: whatever is still in flight then is stuck.
  const int64_t hard_end = end + kStallNs;
  int64_t next_tick = start + kTickNs;

  for (uint32_t i = 0; i < conns_.size(); ++i) open(i, now_ns());

  epoll_event events[kMaxEvents];
  for (;;) {
    int64_t now = now_ns();
    if (cancel_ && cancel_->load(std::memory_order_relaxed)) break;
    if (!stopping_ && now >= end) begin_stop();
    if (stopping_ && (live_ == 0 || now >= hard_end)) break;
    if (now >= next_tick) {
      scan_stalls(now);
      next_tick = now + kTickNs;
    }
    retry_due(now);

    int64_t wake = std::min(next_tick, stopping_ ? hard_end : end);
    if (!retry_queue_.empty()) wake = std::min(wake, conns_[retry_queue_.front()].retry_ns);
    // Rounded up: waking a little late is harmless, waking early would spin until the deadline.
    int64_t wait_ns = std::max<int64_t>(0, wake - now);
    int timeout_ms = static_cast<int>((wait_ns + kNsPerMs - 1) / kNsPerMs);

    // Every signal is blocked in this thread, so EINTR cannot happen; retried all the same.
    int n = retry_eintr([&] { return epoll_wait(ep_.get(), events, kMaxEvents, timeout_ms); });
    if (n < 0) {
      // Cannot happen with a valid epoll fd and buffer; end the run rather than spin.
      ++r_.errors;
      break;
    }
    for (int k = 0; k < n; ++k) {
      auto i = static_cast<uint32_t>(events[k].data.u64 & 0xFFFFFFFFu);
      auto gen = static_cast<uint32_t>(events[k].data.u64 >> 32);
      Conn& c = conns_[i];
      if (c.gen != gen || !c.fd.valid()) continue;
      int64_t t = now_ns();
      if (c.state == ConnState::Connecting) {
        finish_connect(i, t);
        continue;
      }
      if (c.state != ConnState::Active) continue;
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) pull(i, t);
      if (c.gen == gen && c.state == ConnState::Active && (events[k].events & EPOLLOUT) && c.sent < send_len()) {
        push(i, t);
      }
    }
  }

  // Whatever is still in flight did not finish within a stall's time after the end: a stall.
  for (Conn& c : conns_) {
    if (is_live(c.state) && !(cancel_ && cancel_->load(std::memory_order_relaxed))) ++r_.errors;
    close_conn(c);
    set_state(c, ConnState::Done);
  }
  r_.durationMs = static_cast<double>(now_ns() - start) / static_cast<double>(kNsPerMs);
  r_.latencyUs.p50 = static_cast<double>(hist_.percentile_ns(50)) / 1000.0;
  r_.latencyUs.p90 = static_cast<double>(hist_.percentile_ns(90)) / 1000.0;
  r_.latencyUs.p99 = static_cast<double>(hist_.percentile_ns(99)) / 1000.0;
  r_.latencyUs.max = static_cast<double>(hist_.max_ns()) / 1000.0;
  r_.latencyUs.mean = hist_.mean_ns() / 1000.0;
}

}  // namespace

LoadResult run_load(const LoadOptions& options, const std::atomic<bool>* cancel) {
  LoadResult result;
  {
    Engine engine(options, cancel, result);
    result.error = engine.setup();
    if (!result.error) engine.run();
  }  // every socket and the epoll fd are closed here, inside the measured CPU time
  rusage ru{};
  if (getrusage(RUSAGE_THREAD, &ru) == 0) {
    result.cpuUserMs =
        static_cast<double>(ru.ru_utime.tv_sec) * 1000.0 + static_cast<double>(ru.ru_utime.tv_usec) / 1000.0;
    result.cpuSystemMs =
        static_cast<double>(ru.ru_stime.tv_sec) * 1000.0 + static_cast<double>(ru.ru_stime.tv_usec) / 1000.0;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// LoadThread

LoadThread::~LoadThread() {
  if (started_) {
    cancel();
    join();
  }
}

SysError LoadThread::start(const LoadOptions& options, Done done, void* context) {
  options_ = options;
  done_ = done;
  context_ = context;
  // Threads inherit the creator's signal mask: with every signal blocked, no signal meant for
  // Node (SIGINT, SIGCHLD for libuv…) is ever delivered to the load thread.
  sigset_t old;
  block_all_signals(&old);
  int rc = pthread_create(&thread_, nullptr, &LoadThread::main, this);
  restore_signal_mask(&old);
  if (rc != 0) return {rc, "pthread_create"};
  started_ = true;
  return {};
}

void* LoadThread::main(void* arg) {
  auto* self = static_cast<LoadThread*>(arg);
  pthread_setname_np(pthread_self(), kLoadThreadName);
  self->tid_.store(gettid(), std::memory_order_relaxed);
  self->result_ = run_load(self->options_, &self->cancel_);
  self->done_(self->context_);
  return nullptr;
}

void LoadThread::join() {
  if (!started_) return;
  pthread_join(thread_, nullptr);
  started_ = false;
  pid_t tid = tid_.load(std::memory_order_relaxed);
  if (tid == 0) return;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d", static_cast<int>(tid));
  int64_t give_up = now_ns() + 1000 * kNsPerMs;
  while (access(path, F_OK) == 0 && now_ns() < give_up) usleep(100);
}

}  // namespace ps
