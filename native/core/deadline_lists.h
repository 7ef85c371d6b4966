// The time limits of ServePolicy (connection.h) for a loop that serves every connection on one
// thread (epoll_server.cc, uring_server.cc), as serve_connection keeps them for the blocking
// models: idle (nothing read or written for idleTimeoutMs), lifetime (maxConnectionMs) and rate (at
// least minBytesPerSecond × rateWindowMs / 1000 bytes read in each window of rateWindowMs).
//
// Every connection has the same durations, so for each limit a list whose deadlines only grow at
// its tail is a complete timer structure (as Node's timers keep one list per duration): activity
// moves a connection to the tail of the idle list, a window that is over re-arms it at the tail of
// the rate list, the lifetime list is in accept order; each head is that limit's next deadline,
// and the loop sleeps until the nearest. O(1) per event, no scan of the connections.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "clock.h"
#include "connection.h"
#include "event_record.h"

namespace ps {

// A wait's timeout until `deadline` (monotonic ms): -1 (no limit) for INT64_MAX, 0 once it has
// come, else the milliseconds left (at most INT32_MAX).
inline int wait_ms_until(int64_t deadline) {
  if (deadline == INT64_MAX) return -1;
  const int64_t left = deadline - monotonic_ms();
  return left <= 0 ? 0 : (left > INT32_MAX ? INT32_MAX : static_cast<int>(left));
}

// A connection's place in one list.
template <class Conn>
struct DeadlineLink {
  int64_t at = 0;  // the deadline, monotonic ms
  Conn* prev = nullptr;
  Conn* next = nullptr;
  bool linked = false;
};

// Connections ordered by one deadline that is only ever set to now + the same duration, so that
// appending keeps the order: the head is the next deadline.
template <class Conn>
class DeadlineList {
 public:
  explicit DeadlineList(DeadlineLink<Conn> Conn::*link) : link_(link) {}
  Conn* head() const { return head_; }
  // The head's deadline; INT64_MAX when the list is empty.
  int64_t next() const { return head_ != nullptr ? (head_->*link_).at : INT64_MAX; }
  void push_back(Conn& conn, int64_t at) {
    remove(conn);
    assert(tail_ == nullptr || (tail_->*link_).at <= at);  // appending keeps the order
    DeadlineLink<Conn>& l = conn.*link_;
    l.at = at;
    l.prev = tail_;
    l.next = nullptr;
    l.linked = true;
    if (tail_ != nullptr)
      (tail_->*link_).next = &conn;
    else
      head_ = &conn;
    tail_ = &conn;
  }
  void remove(Conn& conn) {
    DeadlineLink<Conn>& l = conn.*link_;
    if (!l.linked) return;
    if (l.prev != nullptr)
      (l.prev->*link_).next = l.next;
    else
      head_ = l.next;
    if (l.next != nullptr)
      (l.next->*link_).prev = l.prev;
    else
      tail_ = l.prev;
    l = DeadlineLink<Conn>{};
  }

 private:
  DeadlineLink<Conn> Conn::*link_;
  Conn* head_ = nullptr;
  Conn* tail_ = nullptr;
};

// The three lists of one server. `Conn` has members `DeadlineLink<Conn> idle, life, rate` and
// `ConnectionLimits limits` (whose window_got the steps count the bytes moved into).
template <class Conn>
class ConnectionDeadlines {
 public:
  explicit ConnectionDeadlines(const ServePolicy& policy)
      : idle_ms_(policy.idleTimeoutMs), life_ms_(policy.maxConnectionMs) {
    if (policy.minBytesPerSecond > 0) {
      window_ms_ = policy.rateWindowMs;
      window_need_ = (static_cast<uint64_t>(policy.minBytesPerSecond) * static_cast<uint64_t>(window_ms_) + 999) / 1000;
    }
  }

  // A new connection, at `now`: its lifetime and first rate window start, and it is active.
  void start(Conn& conn, int64_t now) {
    conn.limits.window_got = 0;
    touch(conn, now);
    if (life_ms_ > 0) life_.push_back(conn, now + life_ms_);
    if (window_ms_ > 0) rate_.push_back(conn, now + window_ms_);
  }
  // Activity: the connection's idle deadline moves to now + idleTimeoutMs, the latest of all.
  void touch(Conn& conn, int64_t now) {
    if (idle_ms_ > 0) idle_.push_back(conn, now + idle_ms_);
  }
  void remove(Conn& conn) {
    idle_.remove(conn);
    life_.remove(conn);
    rate_.remove(conn);
  }
  // The nearest deadline (monotonic ms), INT64_MAX when none.
  int64_t next() const { return std::min({idle_.next(), life_.next(), rate_.next()}); }

  // The deadlines that have come by `now`, in serve_connection's order: lifetime, then the rate
  // window, then idle. `end(conn, reason)` must remove() the connection. A rate window that is over
  // (and was met) starts the next one, from now.
  template <class End>
  void expire(int64_t now, End end) {
    while (life_.next() <= now) end(*life_.head(), DisconnectReason::Lifetime);
    while (rate_.next() <= now) {
      Conn& conn = *rate_.head();
      if (conn.limits.window_got < window_need_) {
        end(conn, DisconnectReason::Slow);
        continue;
      }
      conn.limits.window_got = 0;
      rate_.push_back(conn, now + window_ms_);
    }
    while (idle_.next() <= now) end(*idle_.head(), DisconnectReason::Idle);
  }

 private:
  // The limits of the policy; 0: none.
  int idle_ms_ = 0;
  int life_ms_ = 0;
  int window_ms_ = 0;
  uint64_t window_need_ = 0;  // bytes to read in each rate window
  DeadlineList<Conn> idle_{&Conn::idle};
  DeadlineList<Conn> life_{&Conn::life};
  DeadlineList<Conn> rate_{&Conn::rate};
};

}  // namespace ps
