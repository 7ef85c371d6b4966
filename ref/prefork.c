/*
 * ref-prefork: the preforked servers of UNP chapter 30 — the parent forks N children once, and
 * each child is an iterative server: it accepts one client, serves it to the end, and accepts
 * the next. No fork() per connection; a client beyond the N busy children waits in the backlog.
 *
 *   ref-prefork [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc] [--workers N]
 *               [--lock none|flock|mutex|pass]
 *
 * How the children take turns at the listener (--lock):
 *   none   every child blocks in accept() on the shared listener (UNP 30.6).
 *   flock  a file lock around accept() (UNP 30.7): fcntl(F_SETLKW) on a file made with mkstemp()
 *          and unlinked at once. A record lock belongs to the process, so one descriptor inherited
 *          by every child works.
 *   mutex  a PTHREAD_PROCESS_SHARED mutex in memory shared by all children (UNP 30.8).
 *   pass   the parent accepts and passes each descriptor to an idle child over a Unix socket with
 *          SCM_RIGHTS (UNP 30.9); the child writes one byte back when it is idle again.
 *
 * SIGTERM or SIGINT: the parent closes the listener, kills and reaps its children, exits 0.
 */
#include "ref.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum lock_kind { LOCK_NONE, LOCK_FLOCK, LOCK_MUTEX, LOCK_PASS };

static enum lock_kind lock_kind = LOCK_NONE;
static int lock_fd = -1;                   /* flock: the unlinked lock file */
static pthread_mutex_t* lock_mutex = NULL; /* mutex: in a MAP_SHARED page */

struct child {
  pid_t pid;
  int sock; /* pass: the parent's end of the child's Unix socket */
  int idle; /* pass: waiting for a descriptor */
};

/* UNP's my_lock_init(), both variants. */
static void lock_init(void) {
  if (lock_kind == LOCK_FLOCK) {
    char path[] = "/tmp/ref-prefork-lock-XXXXXX";
    lock_fd = mkstemp(path);
    if (lock_fd < 0) {
      perror("mkstemp");
      exit(1);
    }
    unlink(path); /* the descriptor is all the children need; nothing stays on disk */
  } else if (lock_kind == LOCK_MUTEX) {
    lock_mutex = mmap(NULL, sizeof *lock_mutex, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lock_mutex == MAP_FAILED) {
      perror("mmap");
      exit(1);
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    int rc = pthread_mutex_init(lock_mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
      fprintf(stderr, "pthread_mutex_init: %s\n", strerror(rc));
      exit(1);
    }
  }
}

static void lock_wait(void) {
  if (lock_kind == LOCK_FLOCK) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    while (fcntl(lock_fd, F_SETLKW, &fl) < 0) {
      if (errno != EINTR) {
        perror("fcntl(F_SETLKW)");
        _exit(1);
      }
    }
  } else if (lock_kind == LOCK_MUTEX) {
    int rc = pthread_mutex_lock(lock_mutex);
    if (rc != 0) {
      fprintf(stderr, "pthread_mutex_lock: %s\n", strerror(rc));
      _exit(1);
    }
  }
}

static void lock_release(void) {
  if (lock_kind == LOCK_FLOCK) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(lock_fd, F_SETLK, &fl) < 0) {
      perror("fcntl(F_UNLCK)");
      _exit(1);
    }
  } else if (lock_kind == LOCK_MUTEX) {
    pthread_mutex_unlock(lock_mutex);
  }
}

/* UNP's write_fd(): one byte of data, the descriptor in an SCM_RIGHTS message. */
static int write_fd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : 0;
}

/* UNP's read_fd(): returns the descriptor, -1 at EOF (the parent is gone), or exits on an error. */
static int read_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t n;
  do n = recvmsg(sock, &msg, 0);
  while (n < 0 && errno == EINTR);
  if (n == 0) return -1;
  if (n < 0) {
    perror("recvmsg");
    _exit(1);
  }
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "recvmsg: no descriptor passed\n");
    _exit(1);
  }
  int fd;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return fd;
}

/* A child that accepts for itself (none, flock, mutex): UNP's child_main(). */
static void child_accepting(int lfd, int handler) {
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    lock_wait();
    int cfd = accept(lfd, (struct sockaddr*)&peer, &plen);
    int err = errno;
    lock_release();
    if (cfd < 0) {
      if (err == EINTR || ref_accept_error_is_transient(err) || ref_accept_backoff(err)) continue;
      errno = err;
      perror("accept");
      _exit(1);
    }
    ref_serve(cfd, handler);
    ref_close(cfd);
  }
}

/* A child that is handed its clients (pass): UNP 30.9's child_main(). */
static void child_passed(int sock, int handler) {
  for (;;) {
    int cfd = read_fd(sock);
    if (cfd < 0) _exit(0); /* the parent closed its end */
    ref_serve(cfd, handler);
    ref_close(cfd);
    char idle = 1;
    if (send(sock, &idle, 1, MSG_NOSIGNAL) < 0) _exit(0);
  }
}

static pid_t child_make(int lfd, int handler, int* parent_sock) {
  int sv[2] = {-1, -1};
  if (lock_kind == LOCK_PASS && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
    perror("socketpair");
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  if (pid == 0) {
    /* Default SIGTERM/SIGINT: the parent's shutdown ends the child at once. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ref_listen_fd = -1;
    if (lock_kind == LOCK_PASS) {
      ref_close(lfd); /* the parent accepts; this child only talks to its clients */
      ref_close(sv[0]);
      child_passed(sv[1], handler);
    }
    child_accepting(lfd, handler);
  }
  if (lock_kind == LOCK_PASS) ref_close(sv[1]);
  *parent_sock = sv[0];
  return pid;
}

/* pass: the parent's loop (UNP 30.9's main): poll the listener while a child is idle, and
 * every child's socket for its "idle again". The stop handler shuts the listener down, which
 * poll() reports (POLLHUP) even while it is not asked for POLLIN: a stop signal that lands just
 * before poll() is not lost. */
static int parent_passing(int lfd, struct child* children, int n) {
  struct pollfd fds[REF_MAX_WORKERS + 1];
  while (!ref_stop_requested) {
    int navail = 0;
    for (int i = 0; i < n; i++) {
      fds[i].fd = children[i].sock;
      fds[i].events = POLLIN;
      navail += children[i].idle;
    }
    /* No idle child: the listener is not polled for clients, who wait in the backlog. */
    fds[n].fd = lfd;
    fds[n].events = navail > 0 ? POLLIN : 0;
    if (poll(fds, (nfds_t)n + 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char byte;
      ssize_t r = recv(children[i].sock, &byte, 1, 0);
      if (r <= 0) {
        fprintf(stderr, "child %ld terminated unexpectedly\n", (long)children[i].pid);
        return 1;
      }
      children[i].idle = 1;
    }
    if (ref_stop_requested || navail == 0 || !(fds[n].revents & POLLIN)) continue;
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || ref_accept_error_is_transient(errno) ||
          ref_accept_backoff(errno)) {
        continue;
      }
      perror("accept");
      return 1;
    }
    int i = 0;
    while (!children[i].idle) i++; /* the first idle child, as in UNP */
    if (write_fd(children[i].sock, cfd) < 0) perror("sendmsg");
    children[i].idle = 0;
    ref_close(cfd);
  }
  return 0;
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_WORKERS | REF_ARG_LOCK | REF_ARG_RPC);
  if (strcmp(cfg.lock, "flock") == 0) lock_kind = LOCK_FLOCK;
  if (strcmp(cfg.lock, "mutex") == 0) lock_kind = LOCK_MUTEX;
  if (strcmp(cfg.lock, "pass") == 0) lock_kind = LOCK_PASS;

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  /* pass: the parent polls the listener; a client that resets between poll() and accept() must
   * not block it there (UNP 16.6). */
  if (lock_kind == LOCK_PASS && fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) < 0) {
    perror("fcntl(O_NONBLOCK)");
    return 1;
  }
  lock_init();
  /* pass: the stop handler wakes the parent's poll() by shutting the listener down. Otherwise the
   * children share the listener and must not see it shut down under them (they are ended by
   * SIGTERM below); the parent waits in sigsuspend(). */
  ref_listen_fd = lock_kind == LOCK_PASS ? lfd : -1;
  ref_install_stop_handlers();

  struct child children[REF_MAX_WORKERS];
  for (int i = 0; i < cfg.workers; i++) {
    children[i].pid = child_make(lfd, cfg.handler, &children[i].sock);
    children[i].idle = 1;
  }
  ref_announce(port);

  int status = 0;
  if (lock_kind == LOCK_PASS) {
    status = parent_passing(lfd, children, cfg.workers);
  } else {
    /* The children do all the work; the parent waits for a stop signal (UNP's pause()). The stop
     * signals are blocked except inside sigsuspend(), so none slips in after the test. */
    sigset_t stop_signals, wait_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask) < 0) {
      perror("sigprocmask");
      status = 1;
    }
    while (status == 0 && !ref_stop_requested) sigsuspend(&wait_mask);
  }

  ref_listen_fd = -1;
  ref_close(lfd);
  for (int i = 0; i < cfg.workers; i++) {
    if (kill(children[i].pid, SIGTERM) < 0 && errno != ESRCH) perror("kill");
  }
  for (int i = 0; i < cfg.workers; i++) {
    while (waitpid(children[i].pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (children[i].sock >= 0) ref_close(children[i].sock);
  }
  return status;
}
