// The door: rules a connection must pass right after accept(), before any process or thread is
// spent on it — xinetd's only_from/no_access, per_source and cps, tcpserver's rules file:
//
//   allow / deny     lists of CIDR prefixes (IPv4 and IPv6). Deny wins; when allow rules exist,
//                    an address that matches none of them is refused too ('denied').
//   maxPerSource     live connections from one address ('per-source').
//   maxConnectionsPerSecond
//                    a token bucket over all clients: it holds that many tokens, refilled
//                    continuously at that rate; a connection takes one ('rate').
//
// A refused client is counted in `rejected`, reported as a Reject record and closed at once —
// in that order, in every refusal of every model: a client that reconnects as soon as it sees its
// connection closed is refused again after, and heard after, whichever process or thread refuses it.
// Every model's accept path calls pass_door() once, right after accept() returns a client.
//
// The rules and the door's state live in the shared page (shared_page.h), so every process and
// thread of a server sees one door: the fork master admits and its SIGCHLD handler releases when
// the child is reaped; a thread server admits on its accept thread and a worker releases when its
// connection ends; the pool models' members admit concurrently. Nothing here locks or allocates:
// it is safe in a signal handler and across fork().
//
// Per-source counts are exact because they are the live connections themselves: an admitted
// connection holds a slot of `sources` with its address (its ticket) until it ends. Admission
// publishes the slot first, then counts the live slots with the same address, itself included;
// over the limit, it takes its slot back and refuses. Two accepters racing for the last place of
// one address therefore never both get in (each sees the other); at worst both are refused.
// The token bucket is one atomic word (GCRA: the time at which the bucket will be full again).
#pragma once

#include <sys/socket.h>
#include <atomic>
#include <cstdint>

#include "event_record.h"

namespace ps {

struct EventPipe;

// Rules per list; the TypeScript validation uses the same number (constants.MAX_DOOR_RULES).
constexpr int kMaxDoorRules = 256;
// Slots for live connections' addresses: every model has at most kMaxClientsLimit (4096) live
// connections, and a pool's members may each hold one more between admission and its refusal
// for max-clients.
constexpr int kDoorSourceSlots = 4096 + 64;

// An address or a prefix: family 4 or 6, the address in network byte order (4 bytes for IPv4),
// and the prefix length. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address.
struct Cidr {
  uint8_t family = 0;
  uint8_t prefix = 0;
  uint8_t addr[16] = {};
};

struct DoorRules {
  int32_t maxPerSource = 0;             // 0: no limit
  int32_t maxConnectionsPerSecond = 0;  // 0: no limit
  int32_t allowCount = 0;
  int32_t denyCount = 0;
  Cidr allow[kMaxDoorRules];
  Cidr deny[kMaxDoorRules];

  bool any() const { return maxPerSource > 0 || maxConnectionsPerSecond > 0 || allowCount > 0 || denyCount > 0; }
};

// One live connection's address. state = generation << 2 | phase; the generation changes on every
// claim, so a reader can tell that a slot was reused while it read the key (a seqlock).
struct SourceSlot {
  std::atomic<uint32_t> state{0};
  std::atomic<uint32_t> key[5] = {};  // family, then the address as four 32-bit words
};

// The door in the shared page: the rules (written by Node before the server starts, read-only
// afterwards) and the state.
struct DoorPage {
  DoorRules rules;
  alignas(64) std::atomic<uint64_t> full_at_ns{0};   // the token bucket (GCRA's theoretical arrival time)
  alignas(64) std::atomic<int32_t> sources_used{0};  // slots [0, sources_used) have ever been claimed
  SourceSlot sources[kDoorSourceSlots];
};

// A handle on the door; copyable (a forked master or child holds its own copy).
class Door {
 public:
  Door() = default;
  explicit Door(DoorPage* page) : page_(page) {}

  // Whether any rule is set (otherwise every call below does nothing).
  bool active() const { return page_ != nullptr && page_->rules.any(); }

  // The rules, in order: allow/deny, then per-source, then the rate (so that a refused client
  // does not take a token). Admitted: true, `ticket` is the slot to release when the connection
  // ends (-1: none held), `live` the connections from this address, this one included (0 without
  // maxPerSource). Refused: false, `why` says which rule.
  bool admit(const sockaddr_storage& peer, int32_t& ticket, uint32_t& live, RejectReason& why) const;

  // The connection that held `ticket` is over (or was refused after all, for max-clients…).
  // Async-signal-safe: the fork master calls it from its SIGCHLD handler. -1: nothing to do.
  void release(int32_t ticket) const;

 private:
  DoorPage* page_ = nullptr;
};

// "a.b.c.d/n" or "x:…:y/n" (the prefix optional: a whole address) into `out`, host bits cleared;
// an IPv4-mapped IPv6 prefix of at least 96 bits becomes the IPv4 prefix. False when malformed.
bool parse_cidr(const char* text, Cidr& out);

// Whether `peer` lies in `rule` (an IPv4-mapped IPv6 peer is taken as its IPv4 address).
bool cidr_contains(const Cidr& rule, const sockaddr_storage& peer);

// The one call of every accept path, right after accept() returned `cfd` (counted in `accepted`
// as connection `id`): with no rule set, admits. Otherwise asks the door and traces its answer
// (door-pass / door-refuse). Refused: counts it in `rejected`, reports it (Reject: per-source,
// rate, denied), closes cfd, and returns false. Admitted: true; the caller releases
// `ticket` where the connection ends — or at once if it refuses the client itself. No allocation,
// no lock.
// `slot` is traced as the record's slot (a pool member's index; -1: none).
bool pass_door(const Door& door, int cfd, const sockaddr_storage& peer, uint32_t id, const EventPipe& events,
               int32_t& ticket, int32_t slot = -1);

}  // namespace ps
