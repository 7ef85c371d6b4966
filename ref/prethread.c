/*
 * ref-prethread: the prethreaded servers of UNP chapter 30 — a pool of threads created once, at
 * start, that serve every client; no thread is created per connection.
 *
 *   ref-prethread [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc] [--workers N] [--lock mutex|main]
 *
 * --workers: threads in the pool (default: one per CPU).
 *
 * --lock mutex (UNP 30.11): each thread locks a mutex around its own accept(), so only one thread
 *   at a time sleeps in accept() and the others in pthread_mutex_lock(). A client beyond the
 *   pool waits in the listen backlog.
 * --lock main (UNP 30.12): the main thread accepts and puts each descriptor in the array clifd[],
 *   then signals a condition variable; an idle thread takes it. UNP quits when the array
 *   overflows; here the main thread waits for room, so clients then wait in the backlog.
 *
 * Threads are created with every signal blocked, so SIGTERM/SIGINT always reach the main thread
 * (blocked in accept(), or in sigsuspend() with --lock mutex). On a stop signal the listener is
 * closed and main returns; exit() ends the pool and the kernel closes its connections.
 */
#include "ref.h"

#include <pthread.h>

#define MAXNCLI 1024

static const char* const locks[] = {"mutex", "main", NULL};

static int lfd = -1;
static int handler = 0;

/* --lock mutex */
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

/* --lock main: UNP's clifd[], iget, iput, with a second condition for a full array. */
static int clifd[MAXNCLI];
static int iget = 0, iput = 0, queued = 0;
static pthread_mutex_t clifd_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clifd_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t room_cond = PTHREAD_COND_INITIALIZER;

static void check(int rc, const char* what) {
  /* pthread functions return the error instead of setting errno. */
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", what, strerror(rc));
    exit(1);
  }
}

static void* thread_mutex(void* arg) {
  (void)arg;
  for (;;) {
    check(pthread_mutex_lock(&accept_lock), "pthread_mutex_lock");
    int cfd = accept(lfd, NULL, NULL);
    int err = errno;
    check(pthread_mutex_unlock(&accept_lock), "pthread_mutex_unlock");
    if (cfd < 0) {
      if (ref_stop_requested) return NULL; /* the listener was shut down: main is exiting */
      if (err == EINTR || ref_accept_error_is_transient(err) || ref_accept_backoff(err)) continue;
      fprintf(stderr, "accept: %s\n", strerror(err));
      exit(1);
    }
    ref_serve(cfd, handler);
    ref_close(cfd);
  }
}

static void* thread_main(void* arg) {
  (void)arg;
  while (!ref_stop_requested) {
    check(pthread_mutex_lock(&clifd_mutex), "pthread_mutex_lock");
    while (queued == 0) check(pthread_cond_wait(&clifd_cond, &clifd_mutex), "pthread_cond_wait");
    int cfd = clifd[iget];
    iget = (iget + 1) % MAXNCLI;
    queued--;
    check(pthread_cond_signal(&room_cond), "pthread_cond_signal");
    check(pthread_mutex_unlock(&clifd_mutex), "pthread_mutex_unlock");
    ref_serve(cfd, handler);
    ref_close(cfd);
  }
  return NULL;
}

/* --lock main: the main thread's loop. Returns the exit status. */
static int accept_and_hand_over(void) {
  while (!ref_stop_requested) {
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) {
      if (errno == EINTR || ref_stop_requested) continue;
      if (ref_accept_error_is_transient(errno) || ref_accept_backoff(errno)) continue;
      perror("accept");
      return 1;
    }
    check(pthread_mutex_lock(&clifd_mutex), "pthread_mutex_lock");
    while (queued == MAXNCLI) check(pthread_cond_wait(&room_cond, &clifd_mutex), "pthread_cond_wait");
    clifd[iput] = cfd;
    iput = (iput + 1) % MAXNCLI;
    queued++;
    check(pthread_cond_signal(&clifd_cond), "pthread_cond_signal");
    check(pthread_mutex_unlock(&clifd_mutex), "pthread_mutex_unlock");
  }
  return 0;
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_locks(argc, argv, &cfg, REF_ARG_WORKERS | REF_ARG_LOCK | REF_ARG_RPC, locks);
  int with_mutex = strcmp(cfg.lock, "mutex") == 0;
  handler = cfg.handler;

  int port = 0;
  lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();

  /* The pool inherits this mask: every signal blocked, so that stop signals reach main. */
  sigset_t all, old;
  sigfillset(&all);
  check(pthread_sigmask(SIG_BLOCK, &all, &old), "pthread_sigmask");
  for (int i = 0; i < cfg.workers; i++) {
    pthread_t tid;
    check(pthread_create(&tid, NULL, with_mutex ? thread_mutex : thread_main, NULL), "pthread_create");
    check(pthread_detach(tid), "pthread_detach");
  }

  int status = 0;
  if (with_mutex) {
    /* The pool accepts; main only waits for a stop signal. Stop signals stay blocked except
     * inside sigsuspend(), so one cannot arrive between the test and the wait. */
    sigset_t blocked = old, wait_mask = old;
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    check(pthread_sigmask(SIG_SETMASK, &blocked, NULL), "pthread_sigmask");
    ref_announce(port);
    while (!ref_stop_requested) sigsuspend(&wait_mask);
  } else {
    check(pthread_sigmask(SIG_SETMASK, &old, NULL), "pthread_sigmask");
    ref_announce(port);
    status = accept_and_hand_over();
  }

  ref_listen_fd = -1;
  ref_close(lfd);
  return status;
}
