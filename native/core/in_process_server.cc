#include "in_process_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>

#include "accept_guard.h"
#include "eintr.h"
#include "process_hygiene.h"

namespace ps {

InProcessServer::InProcessServer(const ServerOptions& options, int slot_capacity) : slots_(slot_capacity, this) {
  options_ = options;
}

InProcessServer::~InProcessServer() { shut_down_now(); }

void InProcessServer::shut_down_now() {
  if (thread_started_) {
    // Never closed (Node is tearing down): end everything and collect the server thread.
    stop();
    abort_connections();
    pthread_join(thread_, nullptr);
    thread_started_ = false;
  }
}

SysError InProcessServer::launch() {
  SysError err = open_common(options_);
  if (err) return err;
  events_ = EventPipe{event_write_.get(), page_, options_.trace};
  door_ = Door(&page_->door);
  // Threads inherit the creator's signal mask: block everything around pthread_create, so the
  // server thread and its workers never take a signal meant for Node.
  sigset_t old;
  block_all_signals(&old);
  err = prepare();
  int rc = err ? 0 : pthread_create(&thread_, nullptr, &InProcessServer::thread_main, this);
  restore_signal_mask(&old);
  if (err) return err;
  if (rc != 0) return {rc, "pthread_create"};
  thread_started_ = true;
  return {};
}

void* InProcessServer::thread_main(void* arg) {
  auto* self = static_cast<InProcessServer*>(arg);
  // A name of its own in /proc/<pid>/task/<tid>/comm (and in top -H): the labs and the live view
  // find the server thread among Node's by it.
  pthread_setname_np(pthread_self(), kServerThreadName);
  EventRecord listening{};
  listening.type = static_cast<uint8_t>(EventType::Listening);
  self->events_.emit(listening);
  self->accept_loop();
  // Stopped: wait for the live connections (close()'s timeout ends them with shutdown), then for
  // the worker threads themselves, then close the write end: Node sees EOF once every event is in.
  self->slots_.wait_empty();
  self->slots_.wait_workers_gone();
  self->event_write_.reset();
  return nullptr;
}

void InProcessServer::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopping_) return;
  stopping_ = true;
  stop_seen_.store(true);
  open_gate(room_);  // a thread waiting for a free slot (whenFull 'wait') goes on to see the stop
  // Wakes the server thread's blocked accept() (it fails with EINVAL).
  if (lfd_.valid()) {
    shutdown(lfd_.get(), SHUT_RDWR);
    events_.trace(TraceCall::Shutdown, lfd_.get(), 0);
  }
}

void InProcessServer::abort_connections() {
  stop();
  slots_.shutdown_all(events_);
}

void InProcessServer::finish() {
  if (!thread_started_) return;
  pthread_join(thread_, nullptr);
  thread_started_ = false;
}

bool InProcessServer::close_listener_if_stopping() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!stopping_) return false;
  if (lfd_.valid()) {
    events_.trace(TraceCall::CloseLfd, lfd_.get(), 0);
    lfd_.reset();  // the port is free from here on
  }
  return true;
}

uint32_t InProcessServer::record_accept(int cfd, const sockaddr_storage& peer, int member) {
  uint32_t id = static_cast<uint32_t>(page_->counters.accepted.fetch_add(1) + 1);
  events_.trace(member >= 0 ? TraceCall::WorkerAccept : TraceCall::Accept, lfd_.get(), cfd, 0, id, member, &peer);
  return id;
}

void InProcessServer::fail_accept(int err) {
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Error);
  rec.code = err;
  events_.emit(rec);
  std::lock_guard<std::mutex> lock(stop_mu_);
  stopping_ = true;
  lfd_.reset();
}

bool InProcessServer::pass_the_door(int cfd, const sockaddr_storage& peer, uint32_t id, int32_t& door_ticket,
                                    int member) {
  return pass_door(door_, cfd, peer, id, events_, door_ticket, member);
}

int InProcessServer::accept_next(sockaddr_storage& peer, uint32_t& id, int32_t& door_ticket, int member) {
  Counters& c = page_->counters;
  for (;;) {
    // A pool thread that takes the accept mutex after another one saw the stop must not call
    // accept() on a closed (and maybe reused) descriptor number.
    if (close_listener_if_stopping()) return -1;
    socklen_t len = 0;
    int cfd = retry_eintr(c.eintrRetries, [&] {
      len = sizeof peer;
      return accept4(lfd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    });
    int err = errno;
    if (close_listener_if_stopping()) {
      if (cfd >= 0) close(cfd);
      return -1;
    }
    if (cfd >= 0) {
      id = record_accept(cfd, peer, member);
      if (!pass_the_door(cfd, peer, id, door_ticket, member)) continue;  // refused, closed, reported
      return cfd;
    }
    int reserve = reserve_fd_.release();
    AcceptVerdict verdict = handle_accept_failure(err, lfd_.get(), reserve, c, events_);
    reserve_fd_.reset(reserve);
    if (verdict == AcceptVerdict::Retry) continue;
    fail_accept(err);
    return -1;
  }
}

void InProcessServer::begin_connection(Slot* slot, int reported_slot) {
  page_->counters.active.fetch_add(1);
  report_connection(slot, reported_slot);
}

void InProcessServer::report_connection(Slot* slot, int reported_slot) {
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Connection);
  rec.id = slot->id;
  rec.slot = reported_slot;
  set_peer(rec, slot->client);
  slot->announced = events_.announce_connection(rec);
}

void InProcessServer::end_connection(Slot* slot, DisconnectReason reason, int reported_slot) {
  EventRecord rec{};
  rec.type = static_cast<uint8_t>(EventType::Disconnect);
  rec.id = slot->id;
  rec.slot = reported_slot;
  rec.bytesIn = slot->bytes.in.load();
  rec.bytesOut = slot->bytes.out.load();
  Counters& c = page_->counters;
  c.active.fetch_sub(1);
  c.closed.fetch_add(1);
  int cfd = slot->cfd;
  int32_t door_ticket = slot->door_ticket;
  bool announced = slot->announced;
  bool aborted = slots_.release(slot);
  door_.release(door_ticket);
  events_.trace(TraceCall::CloseConn, cfd, close_conn_result_, 0, rec.id, reported_slot);
  rec.code = static_cast<int32_t>(aborted ? DisconnectReason::Aborted : reason);
  if (announced) events_.emit(rec);
  slots_.retire();
  room_made(room_);  // whenFull 'wait': the slot is free (a load of the waiter count, unless one waits)
}

bool InProcessServer::wait_for_free_slot() {
  if (options_.whenFull != WhenFull::Wait) return true;
  return wait_for_room(
      room_, [this] { return slots_.has_free(); }, [this] { return stop_seen_.load(); });
}

void InProcessServer::reject(int cfd, const sockaddr_storage& peer, uint32_t id, int32_t door_ticket,
                             RejectReason reason, int err, int reported_slot) {
  door_.release(door_ticket);
  events_.trace(TraceCall::SlotsFull, cfd, 0, 0, id, reported_slot);
  events_.reject(peer, id, reason, err);
  close(cfd);  // after the Reject record (door.h: refused clients are heard in order)
}

}  // namespace ps
