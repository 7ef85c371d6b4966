// The pool models' master: a fixed pool of worker processes ("members"), forked once at start as
// in UNP chapter 30's preforked servers, and supervised by the master program. Two designs plug
// into it, one file each:
//
//   prefork.cc    the members share Node's listener and each serves one client at a time,
//                 taking turns at accept() by the acceptLock (none, flock, mutex) — or the master
//                 accepts and passes each descriptor to an idle member (pass).
//   reuseport.cc  each member opens a listener of its own on the same address (SO_REUSEPORT) and
//                 serves many clients from an epoll loop; the kernel spreads the connections.
//
// The master runs with every signal blocked except inside ppoll(), which unblocks them atomically
// while it waits (the pselect pattern: no signal slips in between a flag test and the wait), so
// its handlers only set flags and all the work is done in its loop:
//   - it forks `workers` members, each with a control socket (a SOCK_SEQPACKET socketpair) on
//     which the member says when it is ready (kMemberReady) and, for pass, idle again;
//   - it publishes the Listening record once every member is ready;
//   - a member that dies is reaped (SIGCHLD → waitpid), the connections it held are reported
//     ('crash', or 'aborted' once close() ended them) with its Reap record, and a replacement is
//     forked in its place: the pool never shrinks silently;
//   - SIGTERM (close) makes the design stop accepting (and the master shuts down the listeners
//     members passed it); every member then leaves once its live connections are over. SIGUSR1 (close's timeout)
//     SIGKILLs the members. The master exits when no member is left.
//
// Each member starts as a copy of the master (a small, single-threaded program), resets the
// master's handlers, keeps only its own descriptors, dies with the master (PR_SET_PDEATHSIG) and
// runs the design's loop; like the fork model's children it uses async-signal-safe calls only.
//
// The books: every connection a member serves holds an entry of the page's connection table
// (shared_page.h) carrying the member's pid, its id and its byte counts, so that the master can
// report exactly the connections of a member that died. A member updates the table and the
// counters in a fixed order (claim after admission, free before counting down), so a member
// SIGKILLed between two of those adjacent atomic updates can at worst leave `active` one too
// high, never a connection reported twice or a counter below zero.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "fork_master.h"

namespace ps {

// What a member says on its control socket (one byte per message).
constexpr char kMemberReady = 'R';  // set up: the member serves from now on
constexpr char kMemberIdle = 'I';   // pass: the connection is over, send the next one

// A member's exit status, when it exits on its own (distinct from a fork child's 1, 3, 4, 5).
constexpr int kMemberExitStopped = 0;  // close(): no more connections to serve
constexpr int kMemberExitOrphan = 2;   // the master was already gone
constexpr int kMemberExitFatal = 6;    // it reported an Error record (a failed listen, accept…):
                                       // replacing it would fail again, so the master stops

// What the master keeps of each member (its own memory; the page has the accept counts).
struct PoolMember {
  pid_t pid = 0;       // 0: no process (not forked yet, or reaped)
  int ctl = -1;        // the master's end of the member's control socket (non-blocking)
  int listener = -1;   // the master's copy of the member's own listener (reuseport), sent with kMemberReady
  bool ready = false;  // it said kMemberReady
  bool idle = false;   // pass: waiting for a descriptor
};

struct Pool {
  explicit Pool(MasterState& master) : m(master) {}
  MasterState& m;
  PoolMember members[kMaxWorkers];
  bool stopping = false;   // close() began: no new connection, no replacement
  bool announced = false;  // the Listening record is written
  int exit_status = 0;     // the master's, once every member is gone (1: it stopped on a failure)

  int live() const;
  // The first idle member (pass), or -1.
  int first_idle() const;
  // Closes the master's end of member i's control socket (the member reads EOF).
  void close_control(int i);
};

// One design of the pool. The master calls the first group; a new member calls run_member.
class PoolDesign {
 public:
  virtual ~PoolDesign() = default;
  // In the master before any member exists: what the members will share (a lock file, the
  // mutex…). On failure returns false with errno set and the call that failed in `failed`.
  virtual bool prepare(Pool&, TraceCall& failed) {
    (void)failed;
    return true;
  }
  // Descriptors a member keeps besides stdio, the event pipe and its control socket (at most 3).
  virtual int member_fds(const MasterState& m, int* out) const = 0;
  // In a new member, after the pool's hygiene: sends kMemberReady, serves, never returns.
  [[noreturn]] virtual void run_member(MasterState& m, int index, int ctl) = 0;
  // Descriptors the master polls besides the control sockets (pass: the listener), and what it
  // does when they are ready.
  virtual int master_fds(Pool&, pollfd* out) {
    (void)out;
    return 0;
  }
  virtual void on_master_ready(Pool&, const pollfd* fds, int n) {
    (void)fds;
    (void)n;
  }
  // Every member is ready for the first time (reuseport: close Node's listener).
  virtual void on_all_ready(Pool&) {}
  // close() has begun: stop accepting. Live connections go on.
  virtual void on_stop(Pool&) = 0;
};

// Runs the master of a pool. Never returns.
[[noreturn]] void run_pool_master(MasterState& m, PoolDesign& design);

// The designs' entry points (prefork.cc, reuseport.cc), called by master_main.cc.
[[noreturn]] void run_prefork_master(MasterState& m);
[[noreturn]] void run_reuseport_master(MasterState& m);

// ---- The books of one connection, shared by every design (member or master side) ----

// A connection just accepted by (pass: for) member `index`, whose pid is `member`: counted in
// `accepted` and the member's accepts by the caller, with its id. Admitted against maxClients
// exactly (a CAS on `active`: members admit concurrently), given an entry of the connection
// table and reported (Connection, with the member's pid and index) — or refused: closed,
// counted in `rejected` and reported (Reject 'max-clients'). Returns the entry, or nullptr.
// `reserved`: already counted in `active` before it was accepted (reuseport, whenFull 'wait'):
// it is not admitted again, and given back if the door refuses it.
ChildEntry* admit_connection(MasterState& m, int index, pid_t member, int cfd, const sockaddr_storage& peer,
                             uint32_t id, bool reserved = false);
// whenFull 'wait', reuseport: a place in `active` taken before accept() (false: maxClients are
// live), and given back when accept() brought no client.
bool reserve_place(MasterState& m);
void give_back_place(MasterState& m);
// Room was made (a connection ended, a place was given back): reuseport's members waiting for it
// are told through the pool's room eventfd. Nothing without one, or when none waits.
void tell_room(MasterState& m);
// The connection is over (the caller, member `index`, closed it): reported (Disconnect), its
// entry freed, counted. Those steps are several stores to the shared page, and a member SIGKILLed
// halfway through them would leave the connection neither reported by itself nor by the master
// (report_death reports only the entries still held): so the member writes them with its books
// open (PoolPage::books), and the master, before it SIGKILLs a member (close()'s abort), waits for
// the books to be closed and holds them, after which the member never opens them again. Either
// the member wrote the whole end, or its entry is still held and the master reports it.
void finish_connection(MasterState& m, int index, ChildEntry& entry, DisconnectReason reason);
// The same from the master itself (pass: a connection it could not hand to member `index`).
void finish_connection_in_master(MasterState& m, int index, ChildEntry& entry, DisconnectReason reason);
// PoolPage::books[i], the handshake above: a word, so that the master can wait on it (futex).
constexpr int64_t kBooksWaitMs = 1000;  // how long the master waits for a member's books before SIGKILL
enum BooksState : uint32_t {
  kBooksClosed = 0,   // the member is not writing the end of a connection
  kBooksWriting = 1,  // it is (finish_connection)
  kBooksWatched = 2,  // it is, and the master waits for it to finish
  kBooksHeld = 3,     // the master holds them: the member is being SIGKILLed and writes nothing more
};
// A member's failure that ends the pool: an Error record (errno, the call) and kMemberExitFatal.
[[noreturn]] void member_fatal(MasterState& m, TraceCall call, int err);
// One message to the master; a master that is gone is not an error here (SIGPIPE is ignored).
// With kMemberReady a member may pass its own listener (SCM_RIGHTS): the master then shuts it
// down itself at close(), so every listener of the pool stops at once, in one step.
void tell_master(int ctl, char message, int listener = -1);
// sendmsg() of `len` bytes and, unless fd is -1, one descriptor in an SCM_RIGHTS message (UNP's
// write_fd); MSG_NOSIGNAL. Async-signal-safe. Returns what sendmsg returned.
ssize_t send_with_descriptor(int sock, const void* data, size_t len, int fd);

}  // namespace ps
