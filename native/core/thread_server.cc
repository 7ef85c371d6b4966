// The lecture's multi-threaded server (points 9–11, homework 2).
//
//   server thread   loop { cfd = accept(); take a free slot of INFO[maxClients] (or refuse);
//                          pthread_create(&tid, NULL, worker, &slot); pthread_detach(tid); }
//   worker thread   echoes on slot->cfd until EOF, closes it, frees the slot.
//
// Threads share descriptors (they are not copies, lecture point 10): a worker must not close the
// listener and the server thread must not close a worker's cfd — which is why only the worker
// closes its cfd (SlotTable::release) and only the server thread closes lfd.
#include <cerrno>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "in_process_server.h"

namespace ps {

namespace {

// Workers need little stack: serve_connection's 16 KiB buffer and a few frames. A small stack
// keeps 4096 workers at 1 GiB of address space rather than 32 GiB.
constexpr size_t kWorkerStack = 256 * 1024;

class ThreadServer final : public InProcessServer {
 public:
  explicit ThreadServer(const ServerOptions& options) : InProcessServer(options, options.maxClients) {}
  using InProcessServer::launch;

 private:
  void accept_loop() override {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kWorkerStack);
    for (;;) {
      sockaddr_storage peer{};
      int cfd = accept_next(peer);
      if (cfd < 0) break;
      uint32_t id = static_cast<uint32_t>(page_->counters.accepted.fetch_add(1) + 1);
      Slot* slot = slots_.claim(cfd, peer, id);
      if (slot == nullptr) {
        reject(cfd, peer, id, RejectReason::MaxClients, 0);
        continue;
      }
      int index = slots_.index_of(slot);
      begin_connection(slot, index);
      // The worker gets its slot, never &cfd: the next accept() would overwrite cfd before the
      // worker read it, and two workers could end up on one client (lecture point 10).
      pthread_t tid;
      int rc = pthread_create(&tid, &attr, &ThreadServer::worker_main, slot);
      if (rc != 0) {
        end_connection(slot, DisconnectReason::Error, index);
        continue;
      }
      slots_.set_thread(slot, id, tid);
      // Detached: nobody joins a worker; its resources go back to the system when it returns.
      pthread_detach(tid);
    }
    pthread_attr_destroy(&attr);
  }

  static void* worker_main(void* arg) {
    Slot* slot = static_cast<Slot*>(arg);
    auto* self = static_cast<ThreadServer*>(slot->owner);
    slot->tid = static_cast<pid_t>(syscall(SYS_gettid));
    DisconnectReason reason = serve_connection(slot->cfd, self->options_.handler, self->page_->counters, slot->bytes);
    self->end_connection(slot, reason, self->slots_.index_of(slot));
    return nullptr;
  }
};

}  // namespace

std::unique_ptr<Server> start_thread_server(const ServerOptions& options, SysError& error) {
  std::unique_ptr<ThreadServer> server(new ThreadServer(options));
  error = server->launch();
  if (error) return nullptr;
  return server;
}

}  // namespace ps
