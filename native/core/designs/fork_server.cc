// The process models (fork, prefork, reuseport), Node's side: start the master program
// (posix-servers-master, master_main.cc) and watch it.
//
//   Node's process     socket → bind → listen (listen_socket.cc), then fork() + execve() the
//                      master with its descriptors at fixed numbers, as node-pty starts a shell.
//   master process     fork: the lecture's server: accept → fork a child per connection →
//                      SIGCHLD → waitpid (fork_master.cc). prefork, reuseport: a pool of
//                      workers forked once, supervised (pool_master.cc, prefork.cc, reuseport.cc).
//
// Between fork() and execve() the new process is a copy of a multi-threaded one (Node): it makes
// only async-signal-safe calls (signal-safety(7)) — no malloc, no V8, no N-API, no locks. Its
// command line is formatted before the fork (master_argv.h).
//
// Node talks to the master with signals: SIGTERM = stop accepting and drain (close()), SIGUSR1 =
// end live connections now (close()'s timeout has passed), whatever the model, each followed by
// SIGCONT so that a stopped master wakes up to act on it. Node learns the master's exit from a
// waiting thread (as node-pty does) and never calls waitpid(-1) or installs a SIGCHLD handler in
// its own process: both belong to libuv, which reaps its children one pid at a time.
//
// When the master dies without draining (kill -9), its children (pool models: its workers) die
// with it (PR_SET_PDEATHSIG) and go to init; whatever else of the server's session is left (an
// exec'd program's own children) the waiting thread SIGKILLs (server_session.h). It waits until
// they have all been reaped (orphans.h), and reconcile() reports the connections they were
// serving and makes the counters true.
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

#include "../clock.h"
#include "../eintr.h"
#include "../event_pipe.h"
#include "../master_argv.h"
#include "../orphans.h"
#include "../process_hygiene.h"
#include "../server.h"
#include "../server_session.h"
#include "fork_master.h"

extern char** environ;

namespace ps {

namespace {

constexpr char kMasterProgram[] = "posix-servers-master";

// How long the waiting thread waits for the children of a master that died to be reaped by their
// new parent (init collects orphans at once, or every second or two for some container inits).
// Past it close() settles anyway; a zombie of init's is no longer the server's to collect.
constexpr int64_t kOrphanReapTimeoutMs = 5000;

// How long the waiting thread goes on SIGKILLing what is left of a dead master's session (a
// program's child may fork while it looks).
constexpr int64_t kSessionKillTimeoutMs = 2000;

// The master program is built next to the addon (CMakeLists.txt): find the shared object this
// code was loaded from, and take its directory.
std::string master_program_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&master_program_path), &info) == 0 || info.dli_fname == nullptr) return {};
  std::string path = info.dli_fname;
  size_t slash = path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/" + kMasterProgram;
}

// The new process, between fork() and execve(). Puts the master's descriptors at
// kMasterListenFd.. (through copies above them first, so no move overwrites a descriptor still
// to be moved), takes a session of its own — a Ctrl-C in the terminal then reaches Node, which
// closes the server gracefully, and not the master and its children mid-connection; and every
// process of the server, an exec'd program's children included, can be found by that session
// (server_session.h) — and execs.
// If execve() fails, its errno goes to Node through `status_fd` (close-on-exec: Node reads EOF
// when the exec succeeded), as libuv's uv_spawn reports exec failures.
// An entry of -1 in `fds` (no exec block, no stderr to inherit) leaves its number unused.
constexpr int kMasterFds = kMasterStderrFd - kMasterListenFd + 1;

[[noreturn]] void exec_master(const char* path, char* const argv[], const int (&fds)[kMasterFds], int status_fd,
                              const EventPipe& events) {
  setsid();
  int err = 0;
  int high[kMasterFds];
  status_fd = fcntl(status_fd, F_DUPFD_CLOEXEC, 16);
  for (int i = 0; i < kMasterFds && err == 0; ++i) {
    high[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, 16);
    if (fds[i] >= 0 && high[i] < 0) err = errno;
  }
  for (int i = 0; i < kMasterFds && err == 0; ++i) {
    if (high[i] >= 0 && dup2(high[i], kMasterListenFd + i) < 0) err = errno;  // the copy is not close-on-exec
  }
  if (err == 0) {
    events.trace(TraceCall::Exec, fds[0], kMasterListenFd);
    execve(path, argv, environ);
    err = errno;
  }
  if (status_fd >= 0) {
    ssize_t ignored = write(status_fd, &err, sizeof err);
    (void)ignored;
  }
  _exit(127);
}

// Node's side of a fork server.
class ForkServer final : public Server {
 public:
  ~ForkServer() override {
    if (waiter_started_) {
      // Never closed (Node is tearing down): end everything, then collect the waiter (which does
      // not wait for the children: Node is going, and they die with the master).
      tearing_down_.store(true);
      if (!exited_.load()) send_signal(SIGKILL);
      pthread_join(waiter_, nullptr);
    }
  }

  SysError launch(const ServerOptions& options, MasterExitCallback on_exit, void* context) {
    SysError err = open_common(options);
    if (err) return err;
    on_exit_ = on_exit;
    context_ = context;

    std::string path = master_program_path();
    MasterArgv args;
    args.format(options, getpid());
    static_assert(kMasterEventFd == kMasterListenFd + 1 && kMasterReserveFd == kMasterListenFd + 2 &&
                      kMasterPageFd == kMasterListenFd + 3 && kMasterExecFd == kMasterListenFd + 4 &&
                      kMasterStderrFd == kMasterListenFd + 5,
                  "exec_master() places the descriptors in this order");
    // The exec handler's program travels in a block of its own (exec_child.h explains why).
    UniqueFd exec_block;
    if (options.serve.handler == Handler::Exec) {
      exec_block.reset(write_exec_block(options.exec));
      if (!exec_block.valid()) return {errno, "memfd_create"};
    }
    const bool inherit_stderr =
        options.serve.handler == Handler::Exec && options.exec.stderr_mode == ExecStderr::Inherit;
    const int fds[kMasterFds] = {lfd_.get(),     event_write_.get(), reserve_fd_.get(),
                                 page_fd_.get(), exec_block.get(),   inherit_stderr ? STDERR_FILENO : -1};
    const EventPipe events{event_write_.get(), page_, options.trace};
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0) return {errno, "pipe2"};
    UniqueFd status_read(status_pipe[0]);
    UniqueFd status_write(status_pipe[1]);

    // As libuv and node-pty do: every signal blocked across fork(), so no handler of Node's
    // runs in the new process before execve() has reset them.
    sigset_t old;
    block_all_signals(&old);
    pid_t pid = fork_without_atfork_handlers();
    if (pid == 0) exec_master(path.c_str(), args.argv, fds, status_write.get(), events);
    int fork_errno = errno;
    restore_signal_mask(&old);
    if (pid < 0) return {fork_errno, "fork"};
    status_write.reset();
    int exec_errno = 0;
    ssize_t n = retry_eintr([&] { return read(status_read.get(), &exec_errno, sizeof exec_errno); });
    if (n == static_cast<ssize_t>(sizeof exec_errno)) {
      int status;
      retry_eintr([&] { return waitpid(pid, &status, 0); });
      return {exec_errno, "execve"};
    }
    master_ = pid;

    // Node keeps neither the listener, the write end, the reserve nor the page's memfd: the master
    // owns them now. The event pipe reaches EOF when the master and all its children are gone.
    lfd_.reset();
    event_write_.reset();
    reserve_fd_.reset();
    page_fd_.reset();

    // A pidfd cannot name a recycled pid: signals from close() reach this master or nobody.
    pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));

    // node-pty's pattern: a thread that blocks in waitpid(pid) on exactly this pid.
    // The thread blocks every signal (it inherits the mask), so Node's main thread gets them.
    block_all_signals(&old);
    int rc = pthread_create(&waiter_, nullptr, &ForkServer::wait_for_master, this);
    restore_signal_mask(&old);
    if (rc != 0) {
      send_signal(SIGKILL);
      int status;
      retry_eintr([&] { return waitpid(pid, &status, 0); });
      exited_.store(true);
      return {rc, "pthread_create"};
    }
    waiter_started_ = true;
    return {};
  }

  pid_t pid() const override { return master_; }
  // A stopped master (SIGSTOP) keeps a signal pending until it is continued: SIGCONT follows.
  void stop() override {
    send_signal(SIGTERM);
    send_signal(SIGCONT);
  }
  void abort_connections() override {
    send_signal(SIGUSR1);
    send_signal(SIGCONT);
  }
  void kill_now() override { send_signal(SIGKILL); }

  // The master is gone. If it drained and exited 0, its table is empty and the counters already
  // add up. Otherwise (killed, or died) every live entry of its table is a connection whose child
  // (pool models: worker) died with it, never reported: freed and returned. Nothing of the server
  // is alive any more, so `active` is 0 and every accepted connection that was not refused is
  // closed; `reaped` counts the children collected for good, by the master or after its death by
  // their new parent (the waiting thread waited for it), and so equals `closed`, as it does in a
  // fork server's life — pool models: the workers, so those that died with the master are added.
  std::vector<LostConnection> reconcile() override {
    std::vector<LostConnection> lost;
    for (int i = 0; i < options_.maxClients; ++i) {
      ChildEntry& entry = page_->children[i];
      pid_t pid = entry.pid.load();
      if (pid == 0) continue;
      // A pool worker's entry claimed but not yet reported (id 0) counted for nothing.
      if (entry.id != 0 || !is_pool_model(options_.model)) {
        lost.push_back({entry.id, pid, entry.bytes.in.load(), entry.bytes.out.load(), worker_of(pid)});
      }
      entry.pid.store(0);
    }
    // Pool models: the workers still alive when the master died were reaped by their new parent
    // (the waiting thread waited for them); `reaped` counts workers there, not connections.
    uint64_t workers_lost = 0;
    for (int i = 0; i < pool_size(); ++i) {
      if (page_->pool.pids[i].exchange(0) != 0) ++workers_lost;
    }
    const int status = master_status_.load();
    if (lost.empty() && workers_lost == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return lost;
    Counters& c = page_->counters;
    const uint64_t closed = c.accepted.load() - c.rejected.load();
    c.active.store(0);
    c.closed.store(closed);
    if (is_pool_model(options_.model)) {
      c.reaped.fetch_add(workers_lost);
    } else {
      c.reaped.store(closed);
    }
    return lost;
  }

  void finish() override {
    if (waiter_started_) {
      pthread_join(waiter_, nullptr);
      waiter_started_ = false;
    }
    pidfd_.reset();
  }

 private:
  // Pool models: the index of the worker whose pid this is, or -1.
  int32_t worker_of(pid_t pid) const {
    for (int i = 0; i < pool_size(); ++i) {
      if (page_->pool.pids[i].load() == pid) return i;
    }
    return -1;
  }

  void send_signal(int sig) {
    if (exited_.load()) return;
    if (pidfd_.valid()) {
      syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0);
    } else {
      kill(master_, sig);
    }
  }

  static void* wait_for_master(void* arg) {
    auto* self = static_cast<ForkServer*>(arg);
    int status = 0;
    retry_eintr([&] { return waitpid(self->master_, &status, 0); });
    self->master_status_.store(status);
    self->exited_.store(true);
    // A master that drained exited 0 with no child left, and nothing else in its session. One
    // that died left its live children to die by PR_SET_PDEATHSIG (the kernel sent it as the
    // master exited, before waitpid returned) and to be reaped by init — but not what they started
    // (an exec'd program's children): what is left of its session is SIGKILLed here.
    std::vector<pid_t> orphans = kill_session(self->master_);
    // Wait until init has reaped them all, so no zombie of the server outlives close().
    if (!self->tearing_down_.load()) {
      for (int i = 0; i < self->options_.maxClients; ++i) {
        pid_t pid = self->page_->children[i].pid.load();
        if (pid > 0) orphans.push_back(pid);
      }
      // Pool models: every worker, the idle ones too (the table names only those serving a client).
      for (int i = 0; i < self->pool_size(); ++i) {
        pid_t pid = self->page_->pool.pids[i].load();
        if (pid > 0) orphans.push_back(pid);
      }
      if (!orphans.empty()) await_reaped(orphans, kOrphanReapTimeoutMs);
    }
    if (self->on_exit_ != nullptr) self->on_exit_(self->context_, status);
    return nullptr;
  }

  // SIGKILLs every live process of the session `sid` (a dead master's), again until none is left
  // (bounded): returns the pids signalled.
  static std::vector<pid_t> kill_session(pid_t sid) {
    std::vector<pid_t> killed;
    const int64_t deadline = monotonic_ms() + kSessionKillTimeoutMs;
    for (;;) {
      pid_t found[256];
      int n = signal_session(sid, 0, 0, SIGKILL, found, 256);
      killed.insert(killed.end(), found, found + (n < 256 ? n : 256));
      if (n == 0 || monotonic_ms() >= deadline) return killed;
      poll(nullptr, 0, 2);
    }
  }

  pid_t master_ = -1;
  UniqueFd pidfd_;  // the master, as a pidfd: signals reach it or nobody (no recycled pid)
  pthread_t waiter_{};
  bool waiter_started_ = false;
  std::atomic<bool> exited_{false};
  std::atomic<int> master_status_{0};  // its wait status, once exited_
  std::atomic<bool> tearing_down_{false};
  MasterExitCallback on_exit_ = nullptr;
  void* context_ = nullptr;
};

}  // namespace

std::unique_ptr<Server> start_fork_server(const ServerOptions& options, MasterExitCallback on_exit, void* context,
                                          SysError& error) {
  std::unique_ptr<ForkServer> server(new ForkServer());
  error = server->launch(options, on_exit, context);
  if (error) return nullptr;
  return server;
}

}  // namespace ps
