#include "door.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cstdlib>
#include <cstring>

#include "clock.h"
#include "event_pipe.h"

namespace ps {

namespace {

constexpr uint32_t kFree = 0;
constexpr uint32_t kClaimed = 1;
constexpr uint32_t kLive = 2;
constexpr uint32_t kPhaseMask = 3;

constexpr uint64_t kNsPerSecond = 1000000000ull;

// The peer as (family, 16 address bytes): an IPv4-mapped IPv6 address becomes IPv4, so that a
// dual-stack listener applies the IPv4 rules to IPv4 clients.
struct Address {
  uint8_t family = 0;
  uint8_t bytes[16] = {};
};

Address address_of(const sockaddr_storage& peer) {
  Address a;
  if (peer.ss_family == AF_INET) {
    a.family = 4;
    memcpy(a.bytes, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {
      a.family = 4;
      memcpy(a.bytes, in6.s6_addr + 12, 4);
    } else {
      a.family = 6;
      memcpy(a.bytes, in6.s6_addr, 16);
    }
  }
  return a;
}

bool contains(const Cidr& rule, const Address& a) {
  if (rule.family != a.family) return false;
  const int bits = rule.prefix;
  const int whole = bits / 8;
  if (memcmp(rule.addr, a.bytes, static_cast<size_t>(whole)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (rule.addr[whole] & mask) == (a.bytes[whole] & mask);
}

bool any_contains(const Cidr* rules, int count, const Address& a) {
  for (int i = 0; i < count; ++i) {
    if (contains(rules[i], a)) return true;
  }
  return false;
}

void key_of(const Address& a, uint32_t (&key)[5]) {
  key[0] = a.family;
  memcpy(&key[1], a.bytes, 16);
}

// Claims a free slot and publishes `key` in it. -1 when every slot is taken (more live
// connections than any model allows: the caller admits without counting).
int32_t claim_slot(DoorPage& door, const uint32_t (&key)[5]) {
  for (int32_t i = 0; i < kDoorSourceSlots; ++i) {
    SourceSlot& slot = door.sources[i];
    uint32_t state = slot.state.load(std::memory_order_relaxed);
    if ((state & kPhaseMask) != kFree) continue;
    const uint32_t claimed = ((state & ~kPhaseMask) + 4) | kClaimed;  // a new generation
    if (!slot.state.compare_exchange_strong(state, claimed, std::memory_order_acquire)) continue;
    for (int k = 0; k < 5; ++k) slot.key[k].store(key[k], std::memory_order_relaxed);
    int32_t used = door.sources_used.load(std::memory_order_relaxed);
    while (used < i + 1 && !door.sources_used.compare_exchange_weak(used, i + 1)) {
    }
    // seq_cst: this store and the loads of count_live() order against another accepter's (Dekker).
    slot.state.store((claimed & ~kPhaseMask) | kLive, std::memory_order_seq_cst);
    return i;
  }
  return -1;
}

// Live slots holding `key`. A slot reused while being read (its state changed) is skipped: it
// now holds another connection, whose own admission counts this one.
uint32_t count_live(const DoorPage& door, const uint32_t (&key)[5]) {
  uint32_t n = 0;
  const int32_t used = door.sources_used.load(std::memory_order_seq_cst);
  for (int32_t i = 0; i < used; ++i) {
    const SourceSlot& slot = door.sources[i];
    const uint32_t before = slot.state.load(std::memory_order_seq_cst);
    if ((before & kPhaseMask) != kLive) continue;
    bool same = true;
    for (int k = 0; k < 5 && same; ++k) same = slot.key[k].load(std::memory_order_relaxed) == key[k];
    std::atomic_thread_fence(std::memory_order_acquire);
    if (same && slot.state.load(std::memory_order_relaxed) == before) ++n;
  }
  return n;
}

// GCRA, the token bucket as one word: the bucket holds `rate` tokens and refills one every
// 1/rate s; `full_at_ns` is when it would be full again. A connection is admitted when, after
// taking its token, the bucket is not over-drawn.
bool take_token(DoorPage& door, int32_t rate) {
  const uint64_t interval = kNsPerSecond / static_cast<uint64_t>(rate);
  const uint64_t tolerance = kNsPerSecond - interval;  // a burst of `rate` connections at once
  const uint64_t now = monotonic_ns();
  uint64_t full_at = door.full_at_ns.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t base = full_at > now ? full_at : now;
    if (base - now > tolerance) return false;
    if (door.full_at_ns.compare_exchange_weak(full_at, base + interval, std::memory_order_relaxed)) return true;
  }
}

}  // namespace

bool parse_cidr(const char* text, Cidr& out) {
  out = Cidr{};
  char address[INET6_ADDRSTRLEN + 1];
  const char* slash = strchr(text, '/');
  const size_t len = slash != nullptr ? static_cast<size_t>(slash - text) : strlen(text);
  if (len == 0 || len >= sizeof address) return false;
  memcpy(address, text, len);
  address[len] = '\0';
  int max_prefix = 0;
  if (inet_pton(AF_INET, address, out.addr) == 1) {
    out.family = 4;
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, address, out.addr) == 1) {
    out.family = 6;
    max_prefix = 128;
  } else {
    return false;
  }
  long prefix = max_prefix;
  if (slash != nullptr) {
    char* end = nullptr;
    prefix = strtol(slash + 1, &end, 10);
    if (slash[1] == '\0' || *end != '\0' || prefix < 0 || prefix > max_prefix) return false;
  }
  out.prefix = static_cast<uint8_t>(prefix);
  if (out.family == 6 && prefix >= 96 && IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(out.addr))) {
    memmove(out.addr, out.addr + 12, 4);
    memset(out.addr + 4, 0, 12);
    out.family = 4;
    out.prefix = static_cast<uint8_t>(prefix - 96);
  }
  for (int bit = out.prefix; bit < 128; ++bit) out.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return true;
}

bool cidr_contains(const Cidr& rule, const sockaddr_storage& peer) { return contains(rule, address_of(peer)); }

bool Door::admit(const sockaddr_storage& peer, int32_t& ticket, uint32_t& live, RejectReason& why) const {
  ticket = -1;
  live = 0;
  if (!active()) return true;
  DoorPage& door = *page_;
  const DoorRules& rules = door.rules;
  const Address a = address_of(peer);
  if (any_contains(rules.deny, rules.denyCount, a) ||
      (rules.allowCount > 0 && !any_contains(rules.allow, rules.allowCount, a))) {
    why = RejectReason::Denied;
    return false;
  }
  if (rules.maxPerSource > 0) {
    uint32_t key[5];
    key_of(a, key);
    ticket = claim_slot(door, key);
    if (ticket >= 0) {
      live = count_live(door, key);
      if (live > static_cast<uint32_t>(rules.maxPerSource)) {
        release(ticket);
        ticket = -1;
        why = RejectReason::PerSource;
        return false;
      }
    }
  }
  if (rules.maxConnectionsPerSecond > 0 && !take_token(door, rules.maxConnectionsPerSecond)) {
    release(ticket);
    ticket = -1;
    why = RejectReason::Rate;
    return false;
  }
  return true;
}

void Door::release(int32_t ticket) const {
  if (ticket < 0 || page_ == nullptr || ticket >= kDoorSourceSlots) return;
  SourceSlot& slot = page_->sources[ticket];
  const uint32_t state = slot.state.load(std::memory_order_relaxed);
  slot.state.store((state & ~kPhaseMask) | kFree, std::memory_order_release);
}

bool pass_door(const Door& door, int cfd, const sockaddr_storage& peer, uint32_t id, const EventPipe& events,
               int32_t& ticket, int32_t slot) {
  ticket = -1;
  if (!door.active()) return true;
  uint32_t live = 0;
  RejectReason why = RejectReason::Denied;
  if (door.admit(peer, ticket, live, why)) {
    events.trace(TraceCall::DoorPass, cfd, live, 0, id, slot, &peer);
    return true;
  }
  events.trace(TraceCall::DoorRefuse, cfd, static_cast<int64_t>(why), 0, id, slot, &peer);
  events.reject(peer, id, why, 0);
  close(cfd);  // after the Reject record: a client that reconnects at once is refused, and heard, after
  return false;
}

}  // namespace ps
