#include "server.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>

#include "accept_guard.h"
#include "event_pipe.h"

namespace ps {

namespace {

// A forked master points 0, 1, 2 at /dev/null; a descriptor we own must not be one of them
// (possible when Node runs with a closed stdin). Moves it to 3 or above.
bool move_above_stdio(UniqueFd& fd) {
  if (fd.get() > 2) return true;
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return false;
  fd.reset(moved);
  return true;
}

}  // namespace

Server::~Server() {
  drain_.stop();  // it reads the page: before the page goes
  unmap_shared_page(page_);
}

pid_t Server::pid() const { return getpid(); }

SysError Server::open_common(const ServerOptions& options) {
  options_ = options;
  int page_fd = -1;
  page_ = map_shared_page(page_fd);
  if (page_ == nullptr) return {errno, "mmap"};
  page_fd_.reset(page_fd);
  page_->door.rules = options.door;  // read-only from here on, by every process and thread of the server
  if (!is_process_model(options.model)) page_fd_.reset();  // only the exec'd master maps it again
  if (!create_event_pipe(event_read_, event_write_)) return {errno, "pipe2"};
  EventPipe events{event_write_.get(), page_, options.trace};
  SysError err = open_listen_socket(options.listen, lfd_, bound_, events);
  if (err) return err;
  reserve_fd_.reset(open_reserve_fd());
  if (!reserve_fd_.valid()) return {errno, "open"};
  if (!move_above_stdio(lfd_) || !move_above_stdio(event_write_) || !move_above_stdio(reserve_fd_) ||
      (page_fd_.valid() && !move_above_stdio(page_fd_))) {
    return {errno, "fcntl"};
  }
  return {};
}

namespace {

std::unique_ptr<Server> start_model(const ServerOptions& options, MasterExitCallback on_exit, void* context,
                                    SysError& error) {
  switch (options.model) {
    case Model::Fork:
    case Model::Prefork:
    case Model::Reuseport:
      return start_fork_server(options, on_exit, context, error);
    case Model::Thread:
      return start_thread_server(options, error);
    case Model::Iterative:
      return start_iterative_server(options, error);
    case Model::Prethread:
      return start_prethread_server(options, error);
    case Model::Epoll:
      return start_epoll_server(options, error);
    case Model::Uring:
      return start_uring_server(options, error);
  }
  error = {EINVAL, "start"};
  return nullptr;
}

}  // namespace

std::unique_ptr<Server> Server::start(const ServerOptions& options, MasterExitCallback on_exit, void* context,
                                      SysError& error) {
  std::unique_ptr<Server> server = start_model(options, on_exit, context, error);
  if (!server) return nullptr;
  // The events published so far wait in the ring (the first one rang the doorbell).
  error = server->drain_.start(server->page_, std::move(server->event_read_), options.eventBacklog);
  if (error) return nullptr;  // the server's destructor ends what was started
  return server;
}

}  // namespace ps
