/*
 * ref-fork: the concurrent server of UNP chapter 5 — fork() per connection.
 *
 *   ref-fork [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc]
 *
 * The parent only accepts and forks; each child closes the listener, echoes, and _exit()s.
 * Finished children are reaped by a SIGCHLD handler that loops on waitpid(-1, WNOHANG)
 * (UNP 5.10): signals are not queued, so one SIGCHLD may stand for several dead children.
 * The handler is installed without SA_RESTART, so it interrupts a blocked accept() with EINTR,
 * and the accept loop simply calls accept() again.
 *
 * SIGTERM or SIGINT: the listener is closed, every child gets SIGTERM and is reaped, exit 0.
 * SIGUSR2: prints the CPU time of the children reaped so far (ref.h, for the benchmark).
 */
#include "ref.h"

#include <sys/wait.h>

/*
 * The live children, so that shutdown can signal them (kill(0, ...) would hit our own process
 * group, which a supervisor such as Node shares with us). The main loop grows the table and
 * adds pids with signals blocked; the handler only clears entries. A cleared entry is 0.
 */
static volatile pid_t* children = NULL;
static size_t children_cap = 0;
static volatile sig_atomic_t children_live = 0;

static void forget_child(pid_t pid) {
  for (size_t i = 0; i < children_cap; i++) {
    if (children[i] == pid) {
      children[i] = 0;
      children_live--;
      return;
    }
  }
}

/* Async-signal-safe: waitpid() (as ref_reap's wait4) and plain stores only; errno is preserved
 * for the interrupted code (accept() is about to report EINTR through it). */
static void on_sigchld(int signo) {
  (void)signo;
  int saved = errno;
  pid_t pid;
  while ((pid = ref_reap(-1, NULL, WNOHANG)) > 0) forget_child(pid);
  errno = saved;
}

/* Called with signals blocked. Returns 0, or -1 when out of memory. */
static int remember_child(pid_t pid) {
  for (size_t i = 0; i < children_cap; i++) {
    if (children[i] == 0) {
      children[i] = pid;
      children_live++;
      return 0;
    }
  }
  size_t cap = children_cap ? children_cap * 2 : 64;
  volatile pid_t* grown = realloc((void*)children, cap * sizeof *grown);
  if (grown == NULL) return -1;
  for (size_t i = children_cap; i < cap; i++) grown[i] = 0;
  grown[children_cap] = pid;
  children = grown;
  children_cap = cap;
  children_live++;
  return 0;
}

/* Every signal, not only SIGCHLD: a SIGTERM that reached a new child before it had reset its
 * handlers would run the parent's stop handler there, and the child would go on serving. Blocked,
 * it stays pending until the child has restored the default action, and then kills it. */
static void block_signals(sigset_t* old) {
  sigset_t set;
  sigfillset(&set);
  if (sigprocmask(SIG_BLOCK, &set, old) < 0) {
    perror("sigprocmask");
    exit(1);
  }
}

static void restore_mask(const sigset_t* old) {
  if (sigprocmask(SIG_SETMASK, old, NULL) < 0) {
    perror("sigprocmask");
    exit(1);
  }
}

/* The child: what the parent set up for itself must not apply here. */
static void serve_child(int lfd, int cfd, int handler, const sigset_t* mask) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  /* Default SIGTERM/SIGINT: the parent's shutdown (or a terminal's ^C) ends the child at once.
   * Default SIGCHLD: the child has no children of its own to reap; SIGUSR2's report is the parent's. */
  if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGCHLD, &sa, NULL) < 0 ||
      sigaction(SIGUSR2, &sa, NULL) < 0) {
    perror("sigaction");
    _exit(1);
  }
  if (sigprocmask(SIG_SETMASK, mask, NULL) < 0) {
    perror("sigprocmask");
    _exit(1);
  }
  ref_listen_fd = -1;
  ref_close(lfd); /* the listener is the parent's; a child holding it would keep the port busy */
  int rc = ref_serve(cfd, handler);
  ref_close(cfd);
  /* _exit, not exit: stdio buffers inherited from the parent must not be flushed twice. */
  _exit(rc == 0 ? 0 : 1);
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_RPC);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2); /* the report never runs halfway through a reap */
  sa.sa_flags = SA_NOCLDSTOP;      /* no SA_RESTART: see the header comment */
  if (sigaction(SIGCHLD, &sa, NULL) < 0) {
    perror("sigaction(SIGCHLD)");
    exit(1);
  }
  ref_install_report_handler();
  ref_announce(port);

  int status = 0;
  while (!ref_stop_requested) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int cfd = accept(lfd, (struct sockaddr*)&peer, &plen);
    if (cfd < 0) {
      if (errno == EINTR || ref_stop_requested) continue; /* SIGCHLD or a stop: look again */
      if (ref_accept_error_is_transient(errno) || ref_accept_backoff(errno)) continue;
      perror("accept");
      status = 1;
      break;
    }

    /* Signals blocked from fork() until the pid is in the table: a child that dies at once must
     * not be reaped (and looked up) before it was added. */
    sigset_t old;
    block_signals(&old);
    pid_t pid = fork();
    if (pid == 0) serve_child(lfd, cfd, cfg.handler, &old);
    if (pid < 0) {
      perror("fork"); /* EAGAIN/ENOMEM: this client is dropped, the server goes on */
    } else if (remember_child(pid) < 0) {
      fprintf(stderr, "out of memory for the child table; ending child %ld\n", (long)pid);
      kill(pid, SIGKILL); /* it is reaped by the handler like any other */
    }
    restore_mask(&old);
    ref_close(cfd); /* the child has its own copy; ours would keep the connection open */
  }

  ref_listen_fd = -1;
  ref_close(lfd);

  /* Shutdown with signals blocked: the SIGCHLD handler stays out of the way, and the loop below
   * does the reaping itself with a blocking waitpid until no child is left (ECHILD). */
  sigset_t old;
  block_signals(&old);
  for (size_t i = 0; i < children_cap; i++) {
    if (children[i] > 0 && kill(children[i], SIGTERM) < 0 && errno != ESRCH) perror("kill");
  }
  for (;;) {
    pid_t pid = ref_reap(-1, NULL, 0);
    if (pid > 0) {
      forget_child(pid);
      continue;
    }
    if (errno == EINTR) continue; /* cannot happen with signals blocked; harmless if it did */
    if (errno != ECHILD) {
      perror("waitpid");
      status = 1;
    }
    break;
  }
  restore_mask(&old);
  free((void*)children);
  return status;
}
