// whenFull 'wait' (tcpserver -c, socat's max-children): while maxClients connections are live the
// server does not accept, so the next client waits in the listen backlog — its connect() has
// succeeded, nobody reads it — instead of being accepted and closed at once ('refuse', xinetd's
// `instances`, the default). Where the acceptor sleeps until there is room again:
//
//   fork              the master, in sigsuspend(): the SIGCHLD of a child that ended wakes it, as
//                     tcpserver's sig_pause() does (fork_master.cc)
//   prefork pass      the master polls the listener only while there is room (prefork.cc)
//   prefork none, flock, mutex
//                     a member takes a seat before it accepts (one bit of PoolPage::seats per
//                     member: a member that dies holds nothing the master cannot take back), and
//                     waits at this gate while maxClients seats are taken
//   reuseport         a member stops watching its listener and waits for the pool's room eventfd
//   thread, prethread the accepting thread waits at this gate while every slot is in use
//   epoll             the loop stops watching the listener until a connection of its own ends
//
// The gate is a futex word (process-shared: it may live in the shared page) that whoever makes
// room bumps — only while someone waits, so that a server that is not full makes no extra
// syscall and wakes nobody per connection. Async-signal-safe (atomics and the futex syscall).
#pragma once

#include <atomic>
#include <cstdint>

namespace ps {

enum class WhenFull {
  Refuse,  // accept, close at once, report 'max-clients' (xinetd's instances)
  Wait,    // do not accept while full (tcpserver -c, socat max-children)
};

// "refuse", "wait": the value's name at the API and on the master's command line.
const char* when_full_name(WhenFull w);
bool parse_when_full(const char* name, WhenFull& out);

struct RoomGate {
  std::atomic<uint32_t> generation{0};  // bumped whenever room may have been made
  std::atomic<uint32_t> waiters{0};     // acceptors waiting at the gate
};

// The acceptor: returns true as soon as has_room(), false once stopping() (both are re-checked
// after every wake-up). Blocks in the futex meanwhile.
template <class HasRoom, class Stopping>
bool wait_for_room(RoomGate& gate, HasRoom has_room, Stopping stopping);

// Whoever made room (a connection ended, its seat or slot is free): wakes the waiting acceptors.
// Nothing happens when none waits.
void room_made(RoomGate& gate);
// close(): wakes every waiting acceptor, which then sees its stopping() and leaves.
void open_gate(RoomGate& gate);

// The futex itself (FUTEX_WAIT while *word == expected; FUTEX_WAKE every waiter).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected);
// The same for at most `ms` milliseconds.
void futex_wait_ms(std::atomic<uint32_t>& word, uint32_t expected, int64_t ms);
void futex_wake_all(std::atomic<uint32_t>& word);

template <class HasRoom, class Stopping>
bool wait_for_room(RoomGate& gate, HasRoom has_room, Stopping stopping) {
  if (has_room()) return true;
  // Counted as a waiter before looking again: whoever makes room after that look sees the count
  // and bumps the generation, so the futex wait below cannot sleep through it.
  gate.waiters.fetch_add(1);
  bool room = false;
  for (;;) {
    uint32_t seen = gate.generation.load();
    if (stopping()) break;
    if (has_room()) {
      room = true;
      break;
    }
    futex_wait(gate.generation, seen);
  }
  gate.waiters.fetch_sub(1);
  return room;
}

}  // namespace ps
