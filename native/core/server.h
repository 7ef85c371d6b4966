// The model-independent face of a running server, as the N-API glue sees it.
//
// Lifecycle (see ARCHITECTURE.md):
//   start()            socket/bind/listen in Node's process, then fork+exec the master program
//                      (fork, prefork, reuseport) or start a server thread (thread, iterative,
//                      prethread with its pool, epoll, uring). Events flow through the event pipe.
//   stop()             stop accepting now; the listening socket is closed, the port is free.
//   abort_connections() end the connections still being served (close's timeout has passed).
//   take_events()      Node's thread takes the events that the drain thread (event_drain.h)
//                      took out of the ring;
//   …                  the event pipe reaches EOF when the last writer is gone, and the relay
//                      pipe (take_event_fd) once the drain thread has taken the last record;
//   reconcile()        the connections that died with a process of the server, never reported;
//   finish()           then collect what is left (join the server/waiter thread, unmap the page).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "connection.h"
#include "door.h"
#include "event_drain.h"
#include "exec_child.h"
#include "listen_socket.h"
#include "room_gate.h"
#include "shared_page.h"
#include "sys_error.h"
#include "unique_fd.h"

namespace ps {

enum class Model { Fork, Thread, Iterative, Prefork, Reuseport, Prethread, Epoll, Uring };

// The models run by the master program (fork_server.cc starts it; master_main.cc dispatches).
inline bool is_process_model(Model m) { return m == Model::Fork || m == Model::Prefork || m == Model::Reuseport; }
// The models with a fixed pool of workers (`workers`, stats().perWorker): processes or threads.
inline bool is_pool_model(Model m) { return m == Model::Prefork || m == Model::Reuseport || m == Model::Prethread; }

// prefork: how the members take turns at the listener (UNP 30.6–30.9; prefork.cc).
enum class AcceptLock {
  None,   // every idle member blocks in accept() on the shared listener
  Flock,  // a file lock around accept(), taken with fcntl(F_SETLKW) as in UNP 30.7
  Mutex,  // a robust PTHREAD_PROCESS_SHARED mutex in the shared page around accept()
  Pass,   // the master accepts and passes each descriptor to an idle member (SCM_RIGHTS)
};

// prethread: how the pool threads share the listener (UNP 30.11, 30.12; prethread_server.cc).
// The `acceptLock` option at the API, kept apart from prefork's kinds.
enum class PrethreadLock {
  Mutex,  // each pool thread locks a mutex around its own accept()
  Main,   // the server thread accepts and hands cfd to an idle pool thread (queue + condition variable)
};

// Thread names (comm, at most 15 characters) of the in-process models: the server thread (thread,
// iterative, prethread, epoll, uring), the thread model's workers and prethread's pool threads. `top -H`
// shows them; the labs and the live view find them in /proc/<pid>/task/<tid>/comm. Exported as
// constants.threadNames.
inline constexpr char kServerThreadName[] = "ps-server";
inline constexpr char kWorkerThreadName[] = "ps-worker";
inline constexpr char kPoolThreadName[] = "ps-pool";

// Lab switches (issue "Teach"): the defaults are the safe, correct servers; the others reproduce
// the lecture's mistakes on purpose so they can be observed.
enum class ReapMode { Sigchld, None };     // fork: reap in a SIGCHLD handler, or never (zombies)
enum class ThreadArg { Slot, SharedCfd };  // thread: worker gets its slot, or the lecture's &cfd

struct ServerOptions {
  Model model = Model::Fork;
  ListenOptions listen;
  int maxClients = 100;  // fork: live children; thread, prethread, epoll, uring: slots; ignored by iterative
  ServePolicy serve;     // handler, idle timeout, crash hook
  ExecSpec exec;         // the exec handler's program (fork only)
  DoorRules door;        // allow/deny, maxPerSource, maxConnectionsPerSecond (door.h)
  bool trace = false;    // record every syscall as a Trace event
  // maxClients live: refuse the next client at once, or leave it in the listen backlog (room_gate.h)
  WhenFull whenFull = WhenFull::Refuse;
  ReapMode reap = ReapMode::Sigchld;
  bool restart = false;  // fork: SIGCHLD handler with SA_RESTART (accept is restarted, no EINTR)
  ThreadArg threadArg = ThreadArg::Slot;
  int labHoldMs = 0;                         // thread + SharedCfd: worker waits this long before reading *arg
  int workers = 1;                           // prefork, reuseport, prethread: members of the pool (1..kMaxWorkers)
  AcceptLock acceptLock = AcceptLock::None;  // prefork
  PrethreadLock prethreadLock = PrethreadLock::Mutex;  // prethread
  size_t eventBacklog = kDefaultEventBacklog;          // records kept for Node's thread at most (event_drain.h)
  // uring: multishot receives where the kernel has them (false: a single-shot receive re-armed
  // after each completion, as on kernels before 6.1).
  bool multishotReceive = true;
};

// Called once, from a waiting thread, when the fork master has been reaped (wait status).
using MasterExitCallback = void (*)(void* context, int wait_status);

// A connection that was being served when the process serving it died with the server (the
// master was killed, and its children or pool workers with it): what the shared page knew of it.
struct LostConnection {
  uint32_t id = 0;
  pid_t pid = 0;  // the child (pool models: the worker) that served it
  uint64_t bytesIn = 0;
  uint64_t bytesOut = 0;
  int32_t worker = -1;  // pool models: that worker's index
};

class Server {
 public:
  virtual ~Server();

  // Starts a server. On failure returns nullptr and sets `error`; nothing is left behind.
  static std::unique_ptr<Server> start(const ServerOptions& options, MasterExitCallback on_exit, void* context,
                                       SysError& error);

  // The read end of the relay pipe (event_drain.h): a byte when events are waiting, EOF once every
  // writer is gone and every event has been taken out of the ring. The caller (Node) owns it from
  // now on. Valid once.
  int take_event_fd() { return drain_.take_relay_fd(); }
  const sockaddr_storage& address() const { return bound_; }
  virtual pid_t pid() const;
  const Counters& counters() const { return page_->counters; }
  // Accepts per pool member (stats().perWorker); 0 members for models without a pool.
  int pool_size() const { return is_pool_model(options_.model) ? options_.workers : 0; }
  const Counter& member_accepts(int index) const { return page_->pool.accepts[index]; }

  // Node's thread: copies up to `max` events, in order, and returns how many; none: the relay
  // pipe's next byte says when there are (EventDrain::take).
  size_t take_events(EventRecord* out, size_t max) { return drain_.take(out, max); }
  // Whether a listener would hear a connection's events: the writers skip both records while not
  // (EventPipe::announce_connection).
  void hear_connections(bool heard) { page_->events.connections_heard.store(heard ? 1 : 0, std::memory_order_relaxed); }

  virtual void stop() = 0;
  virtual void abort_connections() = 0;
  // Last resort when the server does not finish (fork: SIGKILL the master). Default: nothing.
  virtual void kill_now() {}
  // After the event pipe reached EOF (and, for fork, the master-exit callback), before finish():
  // the connections that died with a process of the server and that no event reported as ended
  // (fork: the live entries of the child table when the master died). Makes the counters true —
  // nothing is active any more — and returns them, for Node to report. Default: none.
  virtual std::vector<LostConnection> reconcile() { return {}; }
  // Call after the event pipe reached EOF (and, for fork, after the master-exit callback).
  virtual void finish() = 0;

 protected:
  Server() = default;
  // Shared by every model: the page, the event pipe, the listening socket.
  SysError open_common(const ServerOptions& options);

  ServerOptions options_;
  SharedPage* page_ = nullptr;
  UniqueFd page_fd_;  // fork: the page's memfd, until the master has mapped it
  UniqueFd event_read_;
  UniqueFd event_write_;
  UniqueFd lfd_;
  UniqueFd reserve_fd_;  // see accept_guard.h
  sockaddr_storage bound_{};

 private:
  EventDrain drain_;  // takes the events out of the ring, from start() on (owns event_read_ then)
};

// Each model's constructor function (fork_server.cc, thread_server.cc, iterative_server.cc,
// prethread_server.cc, epoll_server.cc, uring_server.cc). start_fork_server starts the master program for every
// process model (fork, prefork, reuseport).
std::unique_ptr<Server> start_fork_server(const ServerOptions&, MasterExitCallback, void*, SysError&);
std::unique_ptr<Server> start_thread_server(const ServerOptions&, SysError&);
std::unique_ptr<Server> start_iterative_server(const ServerOptions&, SysError&);
std::unique_ptr<Server> start_prethread_server(const ServerOptions&, SysError&);
std::unique_ptr<Server> start_epoll_server(const ServerOptions&, SysError&);
std::unique_ptr<Server> start_uring_server(const ServerOptions&, SysError&);

}  // namespace ps
