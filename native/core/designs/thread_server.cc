// The lecture's multi-threaded server (points 9–11, homework 2).
//
//   server thread   loop { cfd = accept(); take a free slot of INFO[maxClients] (or refuse);
//                          pthread_create(&tid, NULL, worker, &slot); pthread_detach(tid); }
//   worker thread   echoes on slot->cfd until EOF, closes it, frees the slot.
//
// Threads share descriptors (they are not copies, lecture point 10): a worker must not close the
// listener and the server thread must not close a worker's cfd — which is why only the worker
// closes its cfd (SlotTable::release) and only the server thread closes lfd.
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>

#include "../in_process_server.h"

namespace ps {

namespace {

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
      wait_for_free_slot();  // whenFull 'wait': not while every slot is in use (then: stopping)
      sockaddr_storage peer{};
      uint32_t id = 0;
      int32_t door_ticket = -1;
      int cfd = accept_next(peer, id, door_ticket);
      if (cfd < 0) break;
      Slot* slot = slots_.claim(cfd, peer, id, door_ticket);
      if (slot == nullptr) {  // all maxClients slots in use: the lecture's i == 100
        reject(cfd, peer, id, door_ticket, RejectReason::MaxClients, 0);
        continue;
      }
      int index = slots_.index_of(slot);
      begin_connection(slot, index);
      // The worker gets its slot, never &cfd: the next accept() would overwrite cfd before the
      // worker read it, and two workers could end up on one client (lecture point 10). The lab
      // switch threadArg 'shared-cfd' reproduces that mistake through shared_cfd_.
      shared_cfd_.store(cfd);
      pthread_t tid;
      uint64_t create_ns = monotonic_ns();  // the worker may start (and trace) before we resume
      int rc = pthread_create(&tid, &attr, &ThreadServer::worker_main, slot);
      events_.trace(TraceCall::PthreadCreate, cfd, rc, rc, id, index, nullptr, create_ns);
      if (rc != 0) {
        end_connection(slot, DisconnectReason::Error, index);
        continue;
      }
      // Detached: nobody joins a worker; its resources go back to the system when it returns.
      pthread_detach(tid);
      events_.trace(TraceCall::PthreadDetach, cfd, 0, 0, id, index);
    }
    pthread_attr_destroy(&attr);
  }

  static void* worker_main(void* arg) {
    Slot* slot = static_cast<Slot*>(arg);
    auto* self = static_cast<ThreadServer*>(slot->owner);
    int index = self->slots_.index_of(slot);
    pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    slot->tid = tid;
    slot->thread = pthread_self();
    pthread_setname_np(pthread_self(), kWorkerThreadName);
    Counters& counters = self->page_->counters;
    DisconnectReason reason;
    // If this thread ends abruptly (the lab's crash hook: pthread_exit mid-connection), the cleanup
    // handler still closes the descriptor, frees the slot and reports the connection as crashed.
    pthread_cleanup_push(&ThreadServer::on_worker_crash, slot);
    if (self->options_.threadArg == ThreadArg::SharedCfd) {
      reason = self->serve_shared_cfd(slot, index, tid);
    } else {
      self->events_.trace(TraceCall::WorkerStart, slot->cfd, tid, 0, slot->id, index);
      reason = serve_connection(slot->cfd, self->options_.serve, counters, slot->bytes);
    }
    if (reason == DisconnectReason::Crash) pthread_exit(nullptr);
    pthread_cleanup_pop(0);
    self->end_connection(slot, reason, index);
    return nullptr;
  }

  static void on_worker_crash(void* arg) {
    Slot* slot = static_cast<Slot*>(arg);
    auto* self = static_cast<ThreadServer*>(slot->owner);
    self->end_connection(slot, DisconnectReason::Crash, self->slots_.index_of(slot));
  }

  // Lab: the lecture's bug. The worker reads `*(int*)arg` — here the acceptor's shared_cfd_ —
  // only after labHoldMs, by which time the next accept() may have overwritten it: this worker
  // then serves another worker's client, and its own client is never served.
  DisconnectReason serve_shared_cfd(Slot* slot, int index, pid_t tid) {
    if (options_.labHoldMs > 0) usleep(static_cast<useconds_t>(options_.labHoldMs) * 1000);
    int fd = shared_cfd_.load();
    events_.trace(TraceCall::WorkerStart, fd, tid, 0, slot->id, index);
    if (fd == slot->cfd) return serve_connection(fd, options_.serve, page_->counters, slot->bytes);
    // Serve the wrong client through a private duplicate: the rightful worker will close `fd`,
    // and a recv() on a closed-and-reused descriptor number could read one of Node's own files.
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return DisconnectReason::Error;
    DisconnectReason reason = serve_connection(own, options_.serve, page_->counters, slot->bytes);
    close(own);
    return reason;
  }

  std::atomic<int> shared_cfd_{-1};  // the lecture's `cfd` whose address was passed to every worker
};

}  // namespace

std::unique_ptr<Server> start_thread_server(const ServerOptions& options, SysError& error) {
  return launch_in_process<ThreadServer>(options, error);
}

}  // namespace ps
