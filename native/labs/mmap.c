/*
 * lab-mmap: what a forked child shares with its parent, and what it only has a copy of
 * (lecture point 8).
 *
 *   lab-mmap [--host 127.0.0.1] [--port 0]
 *
 * A fork-per-connection echo server (as ref-fork: the parent accepts and forks, each child closes
 * lfd, echoes and _exit()s, a SIGCHLD handler reaps). Before it echoes, each child adds 1 to
 *   - plain_count, an ordinary global variable: after fork() the child has its own copy of the
 *     parent's memory (copy-on-write), so its addition never reaches the parent, whose
 *     plain_count stays 0;
 *   - *shared_count, in a MAP_SHARED|MAP_ANONYMOUS mapping made before the first fork(): parent
 *     and children have the same pages, so the parent sees every child's addition.
 * and prints on stdout
 *   child <pid> plain <n> shared <n>
 * SIGUSR1 asks the parent for its own view; it prints
 *   parent <pid> plain <n> shared <n> plain_at <hex> shared_at <hex>
 * (the addresses of the two counters, the same in parent and children: the lab finds them in
 * /proc/<pid>/maps). The handler writes that line itself, with write() and a hand-made number
 * format, because printf is not async-signal-safe.
 *
 * Prints "listening <port>" once listening; SIGTERM or SIGINT: the listener is closed, every
 * child gets SIGTERM and is reaped, exit 0.
 */
/* MAP_ANONYMOUS is Linux's and the BSDs' (POSIX has it only since 2024): ask glibc for it. */
#define _DEFAULT_SOURCE
#include "ref.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAX_CHILDREN 64

static long plain_count = 0;         /* ordinary memory: copied by fork() */
static atomic_long* shared_count;    /* MAP_SHARED: the same memory in every process */
static pid_t children[MAX_CHILDREN]; /* live children, for the stop (0: free) */

/* ---- output without stdio (async-signal-safe: write() only) ---- */

struct line {
  char buf[256];
  size_t len;
};

static void put_str(struct line* l, const char* s) {
  while (*s && l->len < sizeof l->buf) l->buf[l->len++] = *s++;
}

static void put_num(struct line* l, unsigned long v, unsigned base) {
  char digits[32];
  size_t n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v > 0);
  if (base == 16) put_str(l, "0x");
  while (n > 0 && l->len < sizeof l->buf) l->buf[l->len++] = digits[--n];
}

static void put_long(struct line* l, long v) {
  if (v < 0) {
    put_str(l, "-");
    v = -v;
  }
  put_num(l, (unsigned long)v, 10);
}

/* One write() per line: a pipe takes up to PIPE_BUF bytes at once, so lines of the parent and of
 * its children never interleave. */
static void emit(struct line* l) {
  put_str(l, "\n");
  ssize_t w;
  do w = write(STDOUT_FILENO, l->buf, l->len);
  while (w < 0 && errno == EINTR);
}

static void report(const char* who) {
  struct line l = {.len = 0};
  put_str(&l, who);
  put_str(&l, " ");
  put_long(&l, (long)getpid());
  put_str(&l, " plain ");
  put_long(&l, plain_count);
  put_str(&l, " shared ");
  put_long(&l, atomic_load(shared_count)); /* lock-free, hence async-signal-safe */
  if (who[0] == 'p') {
    put_str(&l, " plain_at ");
    put_num(&l, (unsigned long)(uintptr_t)&plain_count, 16);
    put_str(&l, " shared_at ");
    put_num(&l, (unsigned long)(uintptr_t)shared_count, 16);
  }
  emit(&l);
}

/* ---- signals ---- */

static void on_sigusr1(int signo) {
  (void)signo;
  int saved = errno;
  report("parent");
  errno = saved;
}

static void on_sigchld(int signo) {
  (void)signo;
  int saved = errno;
  pid_t pid;
  while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_CHILDREN; i++)
      if (children[i] == pid) children[i] = 0;
  }
  errno = saved;
}

static void install(int signo, void (*handler)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigfillset(&sa.sa_mask); /* the handlers never interrupt each other */
  sa.sa_flags = flags;
  if (sigaction(signo, &sa, NULL) < 0) {
    perror("sigaction");
    exit(1);
  }
}

static void set_mask(int how, const sigset_t* set, sigset_t* old) {
  if (sigprocmask(how, set, old) < 0) {
    perror("sigprocmask");
    exit(1);
  }
}

/* ---- the child ---- */

static void serve_child(int lfd, int cfd, int upper, const sigset_t* mask) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGCHLD, &sa, NULL) < 0 ||
      sigaction(SIGUSR1, &sa, NULL) < 0) {
    _exit(1);
  }
  if (sigprocmask(SIG_SETMASK, mask, NULL) < 0) _exit(1);
  ref_listen_fd = -1;
  ref_close(lfd);
  plain_count++;                     /* our copy: the parent's stays as it was */
  atomic_fetch_add(shared_count, 1); /* children may run at once: a plain ++ could lose one */
  report("child");
  int rc = ref_echo(cfd, upper);
  ref_close(cfd);
  _exit(rc == 0 ? 0 : 1);
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  /* Made before any fork(), so that every child inherits the very same mapping. */
  void* page = mmap(NULL, sizeof *shared_count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  shared_count = page;
  atomic_init(shared_count, 0);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  install(SIGCHLD, on_sigchld, SA_NOCLDSTOP); /* no SA_RESTART: accept() returns EINTR, retried */
  install(SIGUSR1, on_sigusr1, SA_RESTART);
  ref_announce(port);

  sigset_t all;
  sigfillset(&all);
  int status = 0;
  while (!ref_stop_requested) {
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) {
      if (errno == EINTR || ref_stop_requested) continue;
      if (ref_accept_error_is_transient(errno) || ref_accept_backoff(errno)) continue;
      perror("accept");
      status = 1;
      break;
    }
    /* Signals blocked from fork() until the pid is in the table (see ref-fork). */
    sigset_t old;
    set_mask(SIG_BLOCK, &all, &old);
    int free_slot = -1;
    for (int i = 0; i < MAX_CHILDREN && free_slot < 0; i++)
      if (children[i] == 0) free_slot = i;
    if (free_slot < 0) {
      set_mask(SIG_SETMASK, &old, NULL);
      ref_close(cfd); /* MAX_CHILDREN clients at once: refuse this one */
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) serve_child(lfd, cfd, cfg.upper, &old);
    if (pid < 0)
      perror("fork");
    else
      children[free_slot] = pid;
    set_mask(SIG_SETMASK, &old, NULL);
    ref_close(cfd); /* the child has its own copy */
  }

  ref_listen_fd = -1;
  ref_close(lfd);
  sigset_t old;
  set_mask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i] > 0) kill(children[i], SIGTERM);
  for (;;) { /* until ECHILD: every child reaped */
    if (waitpid(-1, NULL, 0) > 0 || errno == EINTR) continue;
    break;
  }
  munmap(page, sizeof *shared_count);
  return status;
}
