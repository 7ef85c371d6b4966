/*
 * lab-time-wait: a server that closes first, and restarts on a port its old connections still
 * hold in TIME_WAIT (UNP 2.7, 7.5: SO_REUSEADDR).
 *
 *   lab-time-wait [--reuseaddr no|yes] [--host 127.0.0.1] [--port 0]
 *
 * socket(), then setsockopt(SO_REUSEADDR) only with --reuseaddr yes, bind(), listen(). For each
 * client: accept(), send "bye\n", close(): the server sends the first FIN, so the connection's
 * TIME_WAIT (60 s on Linux) is kept on the server's side, with the server's port as local port.
 * Started again on that port while those rows last, bind() fails with EADDRINUSE unless this
 * socket sets SO_REUSEADDR — and, on Linux, unless the old connections' listener had set it too
 * (each accepted socket inherits the option, and its TIME_WAIT keeps it).
 *
 * Prints "listening <port>" once listening; a failed bind() is "bind errno 98 (Address already
 * in use)" on stderr and exit 1. SIGTERM or SIGINT end it (exit 0).
 */
#include "lab.h"

static const char* const yes_no[] = {"no", "yes", NULL};

/* One client: "bye", then close(): the server's FIN goes first, so TIME_WAIT will be on this side. */
static void greet_and_close(int cfd, long k, void* arg) {
  (void)k;
  (void)arg;
  static const char bye[] = "bye\n";
  ref_send_all(cfd, bye, sizeof bye - 1);
  ref_close(cfd);
}

int main(int argc, char** argv) {
  int reuseaddr = lab_take_choice(&argc, argv, "--reuseaddr", yes_no, 0);
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  int port = 0;
  int lfd = lab_listen(&cfg, reuseaddr, REF_LISTENQ, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  ref_announce(port);
  return lab_serve_each(lfd, greet_and_close, NULL);
}
