// What the thread and iterative models share: both run inside Node's process, on a server thread
// that blocks every signal (Node's handlers stay on Node's threads), with a slot table of live
// connections. The thread model gives each connection a worker; the iterative model serves it on
// the server thread itself, which is why a second client waits in the listen backlog.
#pragma once

#include <pthread.h>
#include <mutex>

#include "event_pipe.h"
#include "server.h"
#include "slot_table.h"

namespace ps {

class InProcessServer : public Server {
 public:
  ~InProcessServer() override;
  void stop() override;
  void abort_connections() override;
  void finish() override;

 protected:
  InProcessServer(const ServerOptions& options, int slot_capacity);

  // Opens the socket and starts the server thread.
  SysError launch();
  // The model's accept loop, on the server thread. Returns when the server stops.
  virtual void accept_loop() = 0;

  // The next connection the door let in (door.h: refused ones are closed and reported here), its
  // id (counted in `accepted`) and its door ticket (for claim(); released by end_connection or
  // reject), or -1 when the server is stopping (the listener is then closed).
  int accept_next(sockaddr_storage& peer, uint32_t& id, int32_t& door_ticket);
  // A connection has a slot: count it and report it.
  void begin_connection(Slot* slot, int reported_slot);
  // A connection is over: report it, count it, close its descriptor and free its slot.
  void end_connection(Slot* slot, DisconnectReason reason, int reported_slot);
  // Refuse: close at once, release its door ticket, count, report.
  void reject(int cfd, const sockaddr_storage& peer, uint32_t id, int32_t door_ticket, RejectReason reason, int err);

  SlotTable slots_;
  EventPipe events_;
  Door door_;

 private:
  static void* thread_main(void* arg);

  std::mutex stop_mu_;  // orders stop()'s shutdown(lfd) before the server thread's close(lfd)
  bool stopping_ = false;
  pthread_t thread_{};
  bool thread_started_ = false;
};

}  // namespace ps
