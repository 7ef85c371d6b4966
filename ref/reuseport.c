/*
 * ref-reuseport: N processes, each with a listening socket of its own on the same address and
 * port (SO_REUSEPORT, Linux 3.9+) and an epoll loop of its own (epoll_loop.h). The kernel
 * spreads new connections over the listeners by a hash, so no process wakes for a connection
 * another one takes.
 *
 *   ref-reuseport [--host 127.0.0.1] [--port 0] [--handler echo|upper] [--workers N]
 *
 * The parent binds first (SO_REUSEPORT set before bind, as every socket of the group must) to
 * learn the port, forks the children, waits until each one listens (one byte each on a pipe),
 * then closes its own listener, which would otherwise take a share of the connections and
 * never accept them.
 *
 * SIGTERM or SIGINT: the parent passes SIGTERM on to the children; each closes its listener and
 * its clients and exits; the parent reaps them and exits 0.
 */
#include "ref.h"

#include <sys/wait.h>

#include "epoll_loop.h"

/* A child: its own listener, its own loop. Stop signals are blocked already (see main). */
static void child_main(const struct ref_config* cfg, int port, int ready_fd, const sigset_t* wait_mask) {
  int bound = 0;
  int lfd = ref_listen_on(cfg, port, 1, &bound);
  if (set_nonblocking(lfd) < 0) {
    perror("fcntl(O_NONBLOCK)");
    _exit(1);
  }
  ref_listen_fd = lfd;
  char byte = 1;
  if (write(ready_fd, &byte, 1) != 1) {
    perror("write");
    _exit(1);
  }
  ref_close(ready_fd);
  _exit(ref_epoll_serve(lfd, cfg->upper, wait_mask));
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_WORKERS);

  int port = 0;
  int lfd = ref_listen_on(&cfg, cfg.port, 1, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  /* Blocked from here on, except inside sigsuspend (parent) and epoll_pwait (children). */
  sigset_t stop_signals, wait_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask) < 0) {
    perror("sigprocmask");
    return 1;
  }

  int ready[2];
  if (pipe(ready) < 0) {
    perror("pipe");
    return 1;
  }
  pid_t children[REF_MAX_WORKERS];
  for (int i = 0; i < cfg.workers; i++) {
    children[i] = fork();
    if (children[i] < 0) {
      perror("fork");
      return 1;
    }
    if (children[i] == 0) {
      ref_close(lfd);
      ref_close(ready[0]);
      child_main(&cfg, port, ready[1], &wait_mask);
    }
  }
  ref_close(ready[1]);
  int status = 0;
  for (int i = 0; i < cfg.workers && status == 0; i++) {
    char byte;
    ssize_t n;
    do n = read(ready[0], &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
      fprintf(stderr, "a child failed to listen\n"); /* it said why on stderr */
      status = 1;
    }
  }
  ref_close(ready[0]);
  ref_listen_fd = -1;
  ref_close(lfd); /* the children's listeners take every connection from now on */
  if (status == 0) ref_announce(port);

  while (status == 0 && !ref_stop_requested) sigsuspend(&wait_mask);
  for (int i = 0; i < cfg.workers; i++) {
    if (kill(children[i], SIGTERM) < 0 && errno != ESRCH) perror("kill");
  }
  for (int i = 0; i < cfg.workers; i++) {
    int st = 0;
    while (waitpid(children[i], &st, 0) < 0 && errno == EINTR) {
    }
    if (status == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) status = 1;
  }
  return status;
}
