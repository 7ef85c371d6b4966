// UNP chapter 30, designs 7 and 8: a pool of threads created once, at start ("prethreading").
//
//   acceptLock mutex (UNP 30.11)
//     pool thread i   loop { lock(mu); cfd = accept(lfd); unlock(mu); serve(cfd); close(cfd); }
//   acceptLock main (UNP 30.12)
//     server thread   loop { cfd = accept(lfd); lock(q); queue[put++] = cfd; signal(cv); unlock(q); }
//     pool thread i   loop { lock(q); while (queue empty) wait(cv, q); cfd = queue[get++]; unlock(q);
//                            serve(cfd); close(cfd); }
//
// No thread is created per connection: after start, strace -f shows no clone(). A client beyond
// the pool waits: with 'mutex' in the listen backlog (nobody is in accept() while every pool
// thread serves), with 'main' in the hand-off queue (accepted, holding one of maxClients' slots,
// until a pool thread is free). maxClients keeps its meaning: live connections (queued ones
// included); the next one is accepted, closed and reported.
//
// With 'mutex' only the thread holding the mutex blocks in accept(); the others wait for the
// mutex. With 'main' the pool threads never touch the listener.
//
// Lab crash hook: a pool thread that ends abruptly (pthread_exit mid-connection) reports its
// connection as 'crash' and, before it is gone, creates its own replacement at the same index;
// the replacement joins it. The pool never shrinks.
//
// close(): stop() wakes the thread blocked in accept() (shutdown(lfd)); each pool thread leaves
// its loop once its connection is over (close()'s timeout shuts the connections down), and the
// server thread joins every one of them, so /proc/self/task is back where it was.
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "../clock.h"
#include "../in_process_server.h"

namespace ps {

namespace {

class PrethreadServer;

// One member of the pool. `thread` is the member's current thread: a replacement takes its place.
struct PoolMember {
  PrethreadServer* server = nullptr;
  int index = 0;
  pthread_t thread{};
  pid_t tid = 0;
  // Set by a crashing thread for its replacement, which joins it first.
  bool has_predecessor = false;
  pthread_t predecessor{};
};

class PrethreadServer final : public InProcessServer {
 public:
  explicit PrethreadServer(const ServerOptions& options)
      : InProcessServer(options, options.maxClients),
        pool_(new PoolMember[options.workers]),
        queue_(new Slot*[options.maxClients]) {
    pthread_attr_init(&attr_);
    pthread_attr_setstacksize(&attr_, kWorkerStack);
    for (int i = 0; i < options.workers; ++i) {
      pool_[i].server = this;
      pool_[i].index = i;
    }
  }

  ~PrethreadServer() override {
    shut_down_now();  // the server thread joins the pool before it returns
    if (!joined_) {   // prepare() failed before the server thread existed
      stop();
      close_queue();
      join_pool();
    }
    pthread_attr_destroy(&attr_);
  }

  using InProcessServer::launch;

 private:
  bool main_accepts() const { return options_.prethreadLock == PrethreadLock::Main; }

  // The pool, created once, before the server thread and with every signal blocked (launch()):
  // the threads inherit that mask, so Node's signals stay on Node's threads.
  SysError prepare() override {
    for (int i = 0; i < options_.workers; ++i) {
      {
        std::lock_guard<std::mutex> lock(pool_mu_);
        ++running_;
      }
      uint64_t create_ns = monotonic_ns();  // the thread may start (and trace) before we resume
      int rc = pthread_create(&pool_[i].thread, &attr_, &PrethreadServer::member_main, &pool_[i]);
      events_.trace(TraceCall::PthreadCreate, -1, rc, rc, 0, i, nullptr, create_ns);
      if (rc != 0) {
        {
          std::lock_guard<std::mutex> lock(pool_mu_);
          --running_;
        }
        stop();
        close_queue();
        join_pool();
        return {rc, "pthread_create"};
      }
      // Named by its creator, so that the whole pool has its name before the server listens.
      pthread_setname_np(pool_[i].thread, kPoolThreadName);
      ++created_;
    }
    return {};
  }

  void accept_loop() override {
    if (main_accepts()) {
      // The accept step of thread_server.cc (UNP design 6), deliberately in parallel: there a
      // thread per connection follows it; here the connection is queued for the pool (design 8).
      for (;;) {
        wait_for_free_slot();  // whenFull 'wait': a queued connection holds a slot too
        sockaddr_storage peer{};
        uint32_t id = 0;
        int32_t door_ticket = -1;
        int cfd = accept_next(peer, id, door_ticket);
        if (cfd < 0) break;
        Slot* slot = slots_.claim(cfd, peer, id, door_ticket);
        if (slot == nullptr) {  // maxClients live (served or queued): refuse
          reject(cfd, peer, id, door_ticket, RejectReason::MaxClients, 0);
          continue;
        }
        // Live from here on: it holds a slot. Reported when a pool thread takes it.
        page_->counters.active.fetch_add(1);
        push(slot);
      }
      close_queue();
    }
    // 'mutex': the pool accepts; this thread only collects it once the server stops.
    join_pool();
  }

  static void* member_main(void* arg) {
    auto* m = static_cast<PoolMember*>(arg);
    PrethreadServer* self = m->server;
    bool has_predecessor;
    pthread_t predecessor;
    pid_t predecessor_tid;
    {
      std::lock_guard<std::mutex> lock(self->pool_mu_);  // the creator holds it until m->thread is set
      has_predecessor = m->has_predecessor;
      predecessor = m->predecessor;
      predecessor_tid = m->tid;
      m->has_predecessor = false;
      m->tid = static_cast<pid_t>(syscall(SYS_gettid));
    }
    if (has_predecessor) {
      pthread_join(predecessor, nullptr);
      self->events_.trace(TraceCall::PthreadJoin, -1, predecessor_tid, 0, 0, m->index);
    }
    if (self->main_accepts())
      self->take_from_queue(m);
    else
      self->accept_with_mutex(m);
    std::lock_guard<std::mutex> lock(self->pool_mu_);
    if (--self->running_ == 0) self->pool_cv_.notify_all();
    return nullptr;
  }

  // UNP 30.11: lock, accept, unlock. Only the thread holding the mutex sleeps in accept().
  void accept_with_mutex(PoolMember* m) {
    for (;;) {
      sockaddr_storage peer{};
      uint32_t id = 0;
      int32_t door_ticket = -1;
      int cfd;
      Slot* slot = nullptr;
      {
        std::lock_guard<std::mutex> lock(accept_mu_);
        events_.trace(TraceCall::MutexLock, -1, 0, 0, 0, m->index);
        // whenFull 'wait': the thread holding the mutex is the one claimer; it waits for a free
        // slot before it accepts (the others wait for the mutex, as they would anyway).
        wait_for_free_slot();
        cfd = accept_next(peer, id, door_ticket, m->index);
        // The slot table has one claimer at a time (slot_table.h): the thread holding this mutex.
        if (cfd >= 0) slot = slots_.claim(cfd, peer, id, door_ticket);
        events_.trace(TraceCall::MutexUnlock, -1, 0, 0, id, m->index);
      }
      if (cfd < 0) return;
      page_->pool.accepts[m->index].fetch_add(1, std::memory_order_relaxed);
      if (slot == nullptr) {  // maxClients live: refuse
        reject(cfd, peer, id, door_ticket, RejectReason::MaxClients, 0, m->index);
        continue;
      }
      begin_connection(slot, m->index);
      serve(m, slot);
    }
  }

  // UNP 30.12: wait for the server thread to hand over a connection.
  void take_from_queue(PoolMember* m) {
    for (;;) {
      Slot* slot;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        queue_cv_.wait(lock, [this] { return queued_ > 0 || queue_closed_; });
        if (queued_ == 0) return;  // closed and drained: the server has stopped
        slot = queue_[queue_get_];
        queue_get_ = (queue_get_ + 1) % options_.maxClients;
        --queued_;
      }
      events_.trace(TraceCall::QueuePop, slot->cfd, m->tid, 0, slot->id, m->index);
      page_->pool.accepts[m->index].fetch_add(1, std::memory_order_relaxed);
      report_connection(slot, m->index);
      serve(m, slot);
    }
  }

  // The queue holds at most maxClients entries: each one holds a slot.
  void push(Slot* slot) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_[(queue_get_ + queued_) % options_.maxClients] = slot;
      ++queued_;
      // Traced under the lock, so that it comes before the pool thread's queue-pop.
      events_.trace(TraceCall::QueuePush, slot->cfd, queued_, 0, slot->id);
    }
    queue_cv_.notify_one();
  }

  void close_queue() {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      queue_closed_ = true;
    }
    queue_cv_.notify_all();
  }

  struct CrashContext {
    PoolMember* member;
    Slot* slot;
  };

  void serve(PoolMember* m, Slot* slot) {
    CrashContext crash{m, slot};
    DisconnectReason reason;
    // The lab's crash hook ends this thread abruptly (pthread_exit mid-connection); the cleanup
    // handler still reports the connection and puts a new thread in this one's place.
    pthread_cleanup_push(&PrethreadServer::on_crash, &crash);
    reason = serve_connection(slot->cfd, options_.serve, page_->counters, slot->bytes);
    if (reason == DisconnectReason::Crash) pthread_exit(nullptr);
    pthread_cleanup_pop(0);
    end_connection(slot, reason, m->index);
  }

  static void on_crash(void* arg) {
    auto* crash = static_cast<CrashContext*>(arg);
    PoolMember* m = crash->member;
    m->server->end_connection(crash->slot, DisconnectReason::Crash, m->index);
    m->server->replace(m);
  }

  // On the crashing thread: its replacement takes its index (and its count in running_) and joins
  // it. If no thread can be created (EAGAIN), the pool is one thread short: the failed
  // pthread_create is traced, and this thread is joined at close like any other.
  void replace(PoolMember* m) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    m->has_predecessor = true;
    m->predecessor = pthread_self();
    pthread_t next;
    uint64_t create_ns = monotonic_ns();
    int rc = pthread_create(&next, &attr_, &PrethreadServer::member_main, m);
    events_.trace(TraceCall::PthreadCreate, -1, rc, rc, 0, m->index, nullptr, create_ns);
    if (rc == 0) {
      pthread_setname_np(next, kPoolThreadName);
      m->thread = next;
      return;
    }
    m->has_predecessor = false;
    if (--running_ == 0) pool_cv_.notify_all();
  }

  // Waits until every pool thread has left its loop (no replacement can be created after that),
  // then joins each member's current thread. Idempotent.
  void join_pool() {
    if (joined_) return;
    std::unique_lock<std::mutex> lock(pool_mu_);
    pool_cv_.wait(lock, [this] { return running_ == 0; });
    lock.unlock();
    for (int i = 0; i < created_; ++i) {
      pthread_join(pool_[i].thread, nullptr);
      events_.trace(TraceCall::PthreadJoin, -1, pool_[i].tid, 0, 0, i);
    }
    joined_ = true;
  }

  std::unique_ptr<PoolMember[]> pool_;
  pthread_attr_t attr_;
  int created_ = 0;      // members whose first thread was created (prepare)
  bool joined_ = false;  // join_pool() has run

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  int running_ = 0;  // pool threads not yet out of their loop

  std::mutex accept_mu_;  // 'mutex': held around accept()

  // 'main': the hand-off queue, a ring of maxClients slots.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::unique_ptr<Slot*[]> queue_;
  int queue_get_ = 0;
  int queued_ = 0;
  bool queue_closed_ = false;
};

}  // namespace

std::unique_ptr<Server> start_prethread_server(const ServerOptions& options, SysError& error) {
  return launch_in_process<PrethreadServer>(options, error);
}

}  // namespace ps
