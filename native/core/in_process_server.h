// What the in-process models share (thread, iterative, prethread, epoll): they run inside Node's
// process, on a server thread that blocks every signal (Node's handlers stay on Node's threads),
// with a slot table of live connections. The thread model gives each connection a worker; the
// iterative model serves it on the server thread itself, which is why a second client waits in
// the listen backlog; prethread serves it on a thread of a pool created once; epoll serves every
// connection on the server thread, without blocking.
#pragma once

#include <pthread.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "event_pipe.h"
#include "server.h"
#include "slot_table.h"

namespace ps {

// Worker and pool threads need little stack: serve_connection's 16 KiB buffer and a few frames. A
// small stack keeps 4096 workers at 1 GiB of address space rather than 32 GiB.
constexpr size_t kWorkerStack = 256 * 1024;

class InProcessServer : public Server {
 public:
  ~InProcessServer() override;
  void stop() override;
  void abort_connections() override;
  void finish() override;

 protected:
  InProcessServer(const ServerOptions& options, int slot_capacity);

  // Opens the socket, runs prepare(), and starts the server thread.
  SysError launch();
  // What a model sets up before its server thread runs, with every signal blocked (threads created
  // here inherit that mask): prethread's pool, epoll's epoll set. A failure is start()'s error.
  virtual SysError prepare() { return {}; }
  // The model's accept loop, on the server thread. Returns when the server stops.
  virtual void accept_loop() = 0;
  // For a derived destructor whose members the server thread uses: stop, end the connections, and
  // join the server thread now, before those members are gone. Idempotent.
  void shut_down_now();

  // The next connection the door let in (door.h: refused ones are closed and reported here), its
  // id (counted in `accepted`) and its door ticket (for claim(); released by end_connection or
  // reject), or -1 when the server is stopping (the listener is then closed). Blocking. `member`:
  // the pool thread that accepts (prethread), traced as worker-accept, or -1.
  int accept_next(sockaddr_storage& peer, uint32_t& id, int32_t& door_ticket, int member = -1);
  // If stop() was called: closes the listener (the port is free from here on) and returns true.
  // Every accept loop calls it after each accept() returns, and before blocking in a new one.
  bool close_listener_if_stopping();
  // A connection was accepted: count it, trace it; returns its id.
  uint32_t record_accept(int cfd, const sockaddr_storage& peer, int member = -1);
  // Right after record_accept: the door (door.h). False: refused, closed and reported. True: its
  // ticket goes with the connection (claim()), released where it ends.
  bool pass_the_door(int cfd, const sockaddr_storage& peer, uint32_t id, int32_t& door_ticket, int member = -1);
  // accept() failed for good: report the error, stop, close the listener.
  void fail_accept(int err);
  // A connection has a slot: count it as active and report it. `reported_slot` goes in the
  // record's slot field: the thread model's slot, prethread's pool index (JS: worker), or -1.
  void begin_connection(Slot* slot, int reported_slot);
  // Report a connection already counted as active (prethread 'main': counted when queued,
  // reported when a pool thread takes it, which is when its serving thread is known).
  void report_connection(Slot* slot, int reported_slot);
  // A connection is over: report it, count it, close its descriptor and free its slot.
  void end_connection(Slot* slot, DisconnectReason reason, int reported_slot);
  // Refuse: release its door ticket, count, report, then close (door.h: in that order). `reported_slot`
  // as above (the refusing pool thread).
  void reject(int cfd, const sockaddr_storage& peer, uint32_t id, int32_t door_ticket, RejectReason reason, int err,
              int reported_slot = -1);

  // whenFull 'wait' (room_gate.h), thread and prethread: the one accepting thread waits here,
  // before accept(), while every slot is in use. True when a slot is free; false when stopping.
  bool wait_for_free_slot();

  SlotTable slots_;
  EventPipe events_;
  Door door_;
  RoomGate room_;  // whenFull 'wait': woken when a slot is retired (end_connection) or at stop()
  // The close-conn trace's result: 0, or (epoll) the epoll descriptor that close(cfd) also takes
  // the connection out of.
  int64_t close_conn_result_ = 0;

 private:
  static void* thread_main(void* arg);

  std::mutex stop_mu_;  // orders stop()'s shutdown(lfd) before the server thread's close(lfd)
  bool stopping_ = false;
  std::atomic<bool> stop_seen_{false};  // stopping_, for the room gate's waiter (no lock there)
  pthread_t thread_{};
  bool thread_started_ = false;
};

// Makes a server of the design `Design` (an InProcessServer) and launches it: the server, or
// nullptr with `error` set when it could not start (nothing of it is left then).
template <class Design>
std::unique_ptr<Server> launch_in_process(const ServerOptions& options, SysError& error) {
  std::unique_ptr<Design> server(new Design(options));
  error = server->launch();
  if (error) return nullptr;
  return server;
}

}  // namespace ps
