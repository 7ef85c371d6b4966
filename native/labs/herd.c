/*
 * lab-herd: N preforked children wait on one shared listener, in one of five ways, and count
 * what happens to each of them (the thundering-herd and accept-balance labs).
 *
 *   lab-herd --wait accept|epoll|exclusive|lock|mutex [--workers N] [--host 127.0.0.1] [--port 0]
 *
 * The parent listens, then forks --workers children (default: CPUs), each of which waits for a
 * connection on the listener they all inherited:
 *   accept     every child blocks in accept() (UNP 30.6, no lock). Linux queues accept() sleepers
 *              exclusively: one child is woken per connection, the one that has waited longest.
 *   epoll      the listener is non-blocking; each child makes its own epoll instance, registers the
 *              listener (EPOLLIN), and loops on epoll_wait() then accept(). Every instance is on
 *              the listener's wait queue: each connection wakes every child (the herd), one wins
 *              accept(), the others go back to sleep (in the kernel or after accept()'s EAGAIN).
 *   exclusive  as epoll, registered with EPOLLEXCLUSIVE (Linux 4.5): one child woken per connection,
 *              the first on the listener's wait queue (exclusive entries are queued in the order
 *              they registered) whose child is waiting in epoll_wait().
 *   lock       UNP 30.7: a file lock (fcntl F_SETLKW, a POSIX record lock, which belongs to the
 *              process) around a blocking accept(): one child sleeps in accept(), the others in
 *              fcntl(); the holder, woken by a connection, unlocks — and Linux wakes the children
 *              blocked on the lock, which race for it again.
 *   mutex      UNP 30.8: a PTHREAD_PROCESS_SHARED mutex in the shared page around a blocking
 *              accept(); an unlock wakes one waiter (a futex), which goes to sleep in accept().
 * A child closes each connection as soon as it has accepted it: a connection costs a child nothing
 * but the wake-ups of its wait (with a lock: of the lock too), which the lab counts.
 *
 * Each child prints "worker <index> <pid>" once it is about to wait (its epoll instance made), and
 * the parent forks the next one only then: they register and wait in index order. Per child, in a MAP_SHARED
 * page made before the fork: connections accepted, accept() calls that failed with EAGAIN, and
 * returns from the call it waits in (epoll_wait or accept). SIGUSR1 asks the parent for them:
 *   count <index> <pid> <accepted> <eagain> <returns>   (one line per child)
 *   counted
 * The parent prints them from its main loop, with stdio, not from the signal handler.
 *
 * Prints "listening <port>" once listening; SIGTERM or SIGINT: every child gets SIGTERM and is
 * reaped, exit 0. The children also die with the parent (PR_SET_PDEATHSIG): none outlives it.
 */
/* MAP_ANONYMOUS is Linux's and the BSDs' (POSIX has it only since 2024): ask glibc for it. */
#define _DEFAULT_SOURCE
#include "ref.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

enum wait_kind { WAIT_ACCEPT, WAIT_EPOLL, WAIT_EXCLUSIVE, WAIT_LOCK, WAIT_MUTEX };

struct child_counts {
  atomic_long accepted;
  atomic_long eagain;
  atomic_long returns;
};

/* The MAP_SHARED page, made before the fork: the same memory in every process. */
struct shared_page {
  pthread_mutex_t accept_mutex; /* mutex: process-shared */
  struct child_counts counts[REF_MAX_WORKERS];
};

static struct shared_page* shared;
static struct child_counts* counts; /* shared->counts */
static pid_t children[REF_MAX_WORKERS];
static volatile sig_atomic_t report_requested = 0;

static void on_sigusr1(int signo) {
  (void)signo;
  report_requested = 1;
}

static void on_sigchld(int signo) { (void)signo; } /* only to end sigsuspend() */

/* Takes "--wait KIND" out of argv (the rest is ref_parse_args_for's); exits on a bad one. */
static enum wait_kind take_wait_arg(int* argc, char** argv) {
  enum wait_kind kind = WAIT_ACCEPT;
  int seen = 0;
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], "--wait") != 0) {
      argv[out++] = argv[i];
      continue;
    }
    const char* val = i + 1 < *argc ? argv[++i] : "";
    if (strcmp(val, "accept") == 0)
      kind = WAIT_ACCEPT;
    else if (strcmp(val, "epoll") == 0)
      kind = WAIT_EPOLL;
    else if (strcmp(val, "exclusive") == 0)
      kind = WAIT_EXCLUSIVE;
    else if (strcmp(val, "lock") == 0)
      kind = WAIT_LOCK;
    else if (strcmp(val, "mutex") == 0)
      kind = WAIT_MUTEX;
    else {
      fprintf(stderr, "%s: --wait must be accept, epoll, exclusive, lock or mutex, got '%s'\n", argv[0], val);
      exit(2);
    }
    seen = 1;
  }
  if (!seen) {
    fprintf(stderr, "usage: %s --wait accept|epoll|exclusive|lock|mutex [--workers N] [--host 127.0.0.1] [--port 0]\n",
            argv[0]);
    exit(2);
  }
  *argc = out;
  return kind;
}

/* One accept() on the listener; the connection is closed at once. */
static void take_one(int lfd, struct child_counts* mine) {
  int cfd = accept(lfd, NULL, NULL);
  if (cfd >= 0) {
    atomic_fetch_add(&mine->accepted, 1);
    ref_close(cfd);
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    atomic_fetch_add(&mine->eagain, 1); /* another child took it first */
  } else if (errno != EINTR && !ref_accept_error_is_transient(errno) && !ref_accept_backoff(errno)) {
    perror("accept");
    _exit(1);
  }
}

/* UNP's my_lock_wait / my_lock_release: the whole file, exclusively. */
static void file_lock(int fd, short type) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  while (fcntl(fd, type == F_UNLCK ? F_SETLK : F_SETLKW, &fl) < 0) {
    if (errno == EINTR) continue;
    perror("fcntl(lock)");
    _exit(1);
  }
}

/* "worker <index> <pid>" on stdout, then one byte on `ready`, which the parent waits for before
 * it forks the next child: the children register and start waiting in index order. */
static void announce_child(int index, int ready) {
  char line[64];
  int n = snprintf(line, sizeof line, "worker %d %ld\n", index, (long)getpid());
  ssize_t w;
  do w = write(STDOUT_FILENO, line, (size_t)n); /* one write: lines of several children never mix */
  while (w < 0 && errno == EINTR);
  do w = write(ready, "r", 1);
  while (w < 0 && errno == EINTR);
  ref_close(ready);
}

/* The child's own epoll instance, made after the fork, with the listener registered in it: one
 * entry per child on the listener's wait queue. */
static int child_epoll(int lfd, enum wait_kind kind) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    perror("epoll_create1");
    _exit(1);
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | (kind == WAIT_EXCLUSIVE ? EPOLLEXCLUSIVE : 0);
  ev.data.fd = lfd;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
    perror("epoll_ctl");
    _exit(1);
  }
  return epfd;
}

static void run_child(int lfd, int lock_fd, int ready, int index, enum wait_kind kind, pid_t parent) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGUSR1, &sa, NULL) < 0 ||
      sigaction(SIGCHLD, &sa, NULL) < 0)
    _exit(1);
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) _exit(1);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(1); /* the parent is gone already */
  ref_listen_fd = -1;
  struct child_counts* mine = &counts[index];

  if (kind == WAIT_ACCEPT || kind == WAIT_LOCK || kind == WAIT_MUTEX) {
    announce_child(index, ready);
    for (;;) {
      if (kind == WAIT_LOCK) file_lock(lock_fd, F_WRLCK);
      if (kind == WAIT_MUTEX && pthread_mutex_lock(&shared->accept_mutex) != 0) _exit(1);
      take_one(lfd, mine);
      atomic_fetch_add(&mine->returns, 1);
      if (kind == WAIT_LOCK) file_lock(lock_fd, F_UNLCK);
      if (kind == WAIT_MUTEX && pthread_mutex_unlock(&shared->accept_mutex) != 0) _exit(1);
    }
  }

  int epfd = child_epoll(lfd, kind);
  announce_child(index, ready);
  for (;;) {
    struct epoll_event event;
    int n = epoll_wait(epfd, &event, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      _exit(1);
    }
    atomic_fetch_add(&mine->returns, 1);
    if (n == 1) take_one(lfd, mine);
  }
}

static void install(int signo, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(signo, &sa, NULL) < 0) {
    perror("sigaction");
    exit(1);
  }
}

int main(int argc, char** argv) {
  enum wait_kind kind = take_wait_arg(&argc, argv);
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_WORKERS);
  int workers = cfg.workers;

  /* Made before any fork(), so that every child inherits the very same mapping. */
  void* page = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  shared = page;
  counts = shared->counts;
  pthread_mutexattr_t attr;
  if (pthread_mutexattr_init(&attr) != 0 || pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
      pthread_mutex_init(&shared->accept_mutex, &attr) != 0) {
    fprintf(stderr, "lab-herd: process-shared mutex\n");
    return 1;
  }
  pthread_mutexattr_destroy(&attr);
  for (int i = 0; i < REF_MAX_WORKERS; i++) {
    atomic_init(&counts[i].accepted, 0);
    atomic_init(&counts[i].eagain, 0);
    atomic_init(&counts[i].returns, 0);
  }

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  int lock_fd = -1;
  if (kind == WAIT_LOCK) {
    /* Unlinked at once: nothing is left on disk, and the kernel drops the lock of a dead holder. */
    char path[] = "/tmp/lab-herd.lock.XXXXXX";
    lock_fd = mkstemp(path);
    if (lock_fd < 0 || unlink(path) < 0) {
      perror("lock file");
      return 1;
    }
  }
  if (kind == WAIT_EPOLL || kind == WAIT_EXCLUSIVE) {
    /* Woken children that lose the race must get EAGAIN, not sleep in accept(). */
    int flags = fcntl(lfd, F_GETFL);
    if (flags < 0 || fcntl(lfd, F_SETFL, flags | O_NONBLOCK) < 0) {
      perror("fcntl(O_NONBLOCK)");
      return 1;
    }
  }
  ref_install_stop_handlers();
  install(SIGUSR1, on_sigusr1);
  install(SIGCHLD, on_sigchld);

  /* Signals blocked from here on but in sigsuspend(): no report or stop is missed between the
   * test of its flag and the wait. */
  sigset_t all, old;
  sigfillset(&all);
  if (sigprocmask(SIG_BLOCK, &all, &old) < 0) {
    perror("sigprocmask");
    return 1;
  }
  ref_announce(port);
  pid_t self = getpid();
  for (int i = 0; i < workers && !ref_stop_requested; i++) {
    int ready[2];
    if (pipe(ready) < 0) {
      perror("pipe");
      ref_stop_requested = 1;
      break;
    }
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      ref_stop_requested = 1;
    } else if (pid == 0) {
      ref_close(ready[0]);
      run_child(lfd, lock_fd, ready[1], i, kind, self);
    } else {
      children[i] = pid;
    }
    ref_close(ready[1]);
    /* One byte once the child waits (EOF if it died first: the loop below reports it). */
    char byte;
    if (pid > 0 && read(ready[0], &byte, 1) != 1) ref_stop_requested = 1;
    ref_close(ready[0]);
  }

  int status = 0;
  while (!ref_stop_requested) {
    sigsuspend(&old);
    if (report_requested) {
      report_requested = 0;
      for (int i = 0; i < workers; i++) {
        printf("count %d %ld %ld %ld %ld\n", i, (long)children[i], atomic_load(&counts[i].accepted),
               atomic_load(&counts[i].eagain), atomic_load(&counts[i].returns));
      }
      if (printf("counted\n") < 0 || fflush(stdout) == EOF) status = 1;
    }
    pid_t gone;
    while ((gone = waitpid(-1, NULL, WNOHANG)) > 0) {
      fprintf(stderr, "lab-herd: child %ld died\n", (long)gone); /* it never should: stop */
      for (int i = 0; i < workers; i++)
        if (children[i] == gone) children[i] = 0;
      ref_stop_requested = 1;
      status = 1;
    }
  }

  for (int i = 0; i < workers; i++)
    if (children[i] > 0) kill(children[i], SIGTERM);
  for (;;) { /* until ECHILD: every child reaped */
    if (waitpid(-1, NULL, 0) > 0 || errno == EINTR) continue;
    break;
  }
  if (lock_fd >= 0) ref_close(lock_fd);
  ref_close(lfd);
  munmap(page, sizeof *shared);
  return status;
}
