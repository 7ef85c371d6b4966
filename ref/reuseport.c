/*
 * ref-reuseport: N processes, each with a listening socket of its own on the same address and
 * port (SO_REUSEPORT, Linux 3.9+) and an epoll loop of its own (epoll_loop.h). The kernel
 * spreads new connections over the listeners by a hash, so no process wakes for a connection
 * another one takes.
 *
 *   ref-reuseport [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc] [--workers N]
 *
 * As nginx's master does, the parent opens the N listeners (SO_REUSEPORT set before each bind, as
 * every socket of the group must; the first one's bind picks the port for the others) and forks
 * the children: child i keeps listener i and closes the rest. The parent keeps its copies until
 * the end (it is the process that holds the server's listeners).
 *
 * SIGTERM or SIGINT: the parent passes SIGTERM on to the children; each shuts its listener down,
 * closes its clients and exits; the parent closes its copies, reaps them and exits 0.
 */
#include "ref.h"

#include <sys/wait.h>

#include "epoll_loop.h"

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_WORKERS | REF_ARG_RPC);

  int port = 0;
  int listeners[REF_MAX_WORKERS];
  listeners[0] = ref_listen_on(&cfg, cfg.port, 1, &port);
  for (int i = 1; i < cfg.workers; i++) {
    int bound = 0;
    listeners[i] = ref_listen_on(&cfg, port, 1, &bound);
  }
  for (int i = 0; i < cfg.workers; i++) {
    /* A blocking listener could block in accept() after epoll reported it ready (UNP 16.6). */
    if (set_nonblocking(listeners[i]) < 0) {
      perror("fcntl(O_NONBLOCK)");
      return 1;
    }
  }
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

  pid_t children[REF_MAX_WORKERS];
  int forked = 0;
  int status = 0;
  for (int i = 0; i < cfg.workers; i++) {
    children[i] = fork();
    if (children[i] < 0) {
      perror("fork");
      status = 1;
      break;
    }
    if (children[i] == 0) {
      for (int j = 0; j < cfg.workers; j++) {
        if (j != i) ref_close(listeners[j]);
      }
      ref_listen_fd = listeners[i]; /* the stop handler shuts it down */
      int ep = ref_epoll_open(listeners[i]);
      _exit(ep < 0 ? 1 : ref_epoll_serve(ep, listeners[i], cfg.handler, &wait_mask));
    }
    forked++;
  }
  if (status == 0) ref_announce(port);

  while (status == 0 && !ref_stop_requested) sigsuspend(&wait_mask);
  /* Each child's stop handler shuts its listener down (the socket the parent shares with it). */
  for (int i = 0; i < forked; i++) {
    if (kill(children[i], SIGTERM) < 0 && errno != ESRCH) perror("kill");
  }
  for (int i = 0; i < cfg.workers; i++) ref_close(listeners[i]);
  for (int i = 0; i < forked; i++) {
    int st = 0;
    while (waitpid(children[i], &st, 0) < 0 && errno == EINTR) {
    }
    if (status == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) status = 1;
  }
  return status;
}
