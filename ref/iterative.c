/*
 * ref-iterative: the iterative TCP echo server of UNP chapter 4/5 — one client at a time.
 * While a client is served, the next ones wait in the listen queue (their connect() has
 * already succeeded: the kernel completes the handshake, accept() only dequeues).
 *
 *   ref-iterative [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc]
 *
 * Prints "listening <port>" once listening; SIGTERM or SIGINT ends the current client, closes
 * the listener and exits 0.
 */
#include "ref.h"

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_RPC);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  ref_announce(port);

  int status = 0;
  while (!ref_stop_requested) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int cfd = accept(lfd, (struct sockaddr*)&peer, &plen);
    if (cfd < 0) {
      if (errno == EINTR || ref_stop_requested) continue; /* the loop condition decides */
      if (ref_accept_error_is_transient(errno) || ref_accept_backoff(errno)) continue;
      perror("accept");
      status = 1;
      break;
    }
    /* Published before the flag is tested again: a stop signal from here on shuts the client
     * down, so recv() cannot block past it. */
    ref_client_fd = cfd;
    if (!ref_stop_requested) ref_serve(cfd, cfg.handler);
    ref_client_fd = -1;
    ref_close(cfd);
  }

  ref_listen_fd = -1;
  ref_close(lfd);
  return status;
}
