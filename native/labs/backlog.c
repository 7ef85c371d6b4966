/*
 * lab-backlog: a listener whose accept queue fills (UNP 4.5: listen()'s backlog).
 *
 *   lab-backlog --backlog N [--accept later|now] [--host 127.0.0.1] [--port 0]
 *
 * socket -> SO_REUSEADDR -> bind -> listen(fd, N). With --accept later (the default) the server
 * does not call accept() until it gets SIGUSR1 — a server busy elsewhere: the kernel finishes the
 * handshakes of the first clients and queues them (Linux queues N + 1, min(N, somaxconn) + 1),
 * then drops the SYNs that find the queue full, and those clients' kernels send their SYN again
 * after the initial retransmission timeout (1 s). With --accept now it accepts from the start:
 * the queue never fills.
 *
 * Once it accepts, it prints "accepting", then for each connection "accepted <k>", sends
 * "served <k>\n" and closes it. Prints "listening <port>" once listening; SIGTERM or SIGINT end
 * it (exit 0).
 */
#include "lab.h"

static const char* const accept_when[] = {"later", "now", NULL};

static volatile sig_atomic_t accept_requested = 0;

static void on_sigusr1(int signo) {
  (void)signo;
  accept_requested = 1;
}

/* The k-th client accepted: said on stdout, told "served <k>", closed. */
static void serve_and_close(int cfd, long k, void* arg) {
  (void)arg;
  lab_say("accepted %ld", k);
  char line[64];
  int n = snprintf(line, sizeof line, "served %ld\n", k);
  ref_send_all(cfd, line, (size_t)n);
  ref_close(cfd);
}

int main(int argc, char** argv) {
  long backlog = lab_take_long(&argc, argv, "--backlog", 0, 65535, -1);
  int now = lab_take_choice(&argc, argv, "--accept", accept_when, 0);
  if (backlog < 0) {
    fprintf(stderr, "usage: %s --backlog N [--accept later|now] [--host 127.0.0.1] [--port 0]\n", argv[0]);
    return 2;
  }
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  int port = 0;
  int lfd = lab_listen(&cfg, 1, (int)backlog, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();

  /* SIGUSR1 is blocked except inside sigsuspend(): it cannot arrive between the test of the
   * flag and the wait (the race a flag and pause() would leave open). */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigset_t usr1, waiting;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  if (sigaction(SIGUSR1, &sa, NULL) < 0 || sigprocmask(SIG_BLOCK, &usr1, &waiting) < 0) {
    perror("sigaction(SIGUSR1)");
    return 1;
  }
  sigdelset(&waiting, SIGUSR1);
  ref_announce(port);

  while (!now && !accept_requested && !ref_stop_requested) sigsuspend(&waiting);
  lab_say("accepting");
  return lab_serve_each(lfd, serve_and_close, NULL);
}
