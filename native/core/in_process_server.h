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

  // The next connection and its id (counted in `accepted`), or -1 when the server is stopping
  // (the listener is then closed).
  int accept_next(sockaddr_storage& peer, uint32_t& id);
  // A connection has a slot: count it and report it.
  void begin_connection(Slot* slot, int reported_slot);
  // A connection is over: report it, count it, close its descriptor and free its slot.
  void end_connection(Slot* slot, DisconnectReason reason, int reported_slot);
  // Refuse: close at once, count, report.
  void reject(int cfd, const sockaddr_storage& peer, uint32_t id, RejectReason reason, int err);

  SlotTable slots_;
  EventPipe events_;

 private:
  static void* thread_main(void* arg);

  std::mutex stop_mu_;  // orders stop()'s shutdown(lfd) before the server thread's close(lfd)
  bool stopping_ = false;
  pthread_t thread_{};
  bool thread_started_ = false;
};

}  // namespace ps
