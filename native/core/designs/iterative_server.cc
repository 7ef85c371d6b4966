// The lecture's naive server (point 3):
//
//   while (1) { cfd = accept(); while (1) { n = read(cfd); if (n <= 0) break; write(cfd, n); } }
//
// One client at a time: while one is served, the next waits in the listen backlog (its connect()
// has completed — the kernel did the handshake — but nobody reads its bytes). maxClients does
// not apply: nothing is refused, the backlog is the only queue.
#include "../in_process_server.h"

namespace ps {

namespace {

class IterativeServer final : public InProcessServer {
 public:
  // One slot: the connection being served, so that close()'s timeout can end it.
  explicit IterativeServer(const ServerOptions& options) : InProcessServer(options, 1) {}
  using InProcessServer::launch;

 private:
  void accept_loop() override {
    for (;;) {
      sockaddr_storage peer{};
      uint32_t id = 0;
      int32_t door_ticket = -1;
      int cfd = accept_next(peer, id, door_ticket);
      if (cfd < 0) break;
      Slot* slot = slots_.claim(cfd, peer, id, door_ticket);  // always free: we serve one at a time
      begin_connection(slot, -1);
      DisconnectReason reason = serve_connection(cfd, options_.serve, page_->counters, slot->bytes);
      end_connection(slot, reason, -1);
    }
  }
};

}  // namespace

std::unique_ptr<Server> start_iterative_server(const ServerOptions& options, SysError& error) {
  return launch_in_process<IterativeServer>(options, error);
}

}  // namespace ps
