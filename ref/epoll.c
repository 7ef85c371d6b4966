/*
 * ref-epoll: one thread, many clients — the I/O-multiplexed echo server (UNP chapter 6 and
 * 16's non-blocking I/O, with Linux's epoll in place of select).
 *
 *   ref-epoll [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc]
 *
 * The loop (level-triggered, one read per wake-up, EPOLLOUT while an echo is pending, stop
 * signals unblocked only inside epoll_pwait) is in epoll_loop.h, shared with ref-reuseport.
 */
#include "ref.h"

#include "epoll_loop.h"

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_RPC);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  /* A blocking listener could block in accept() after epoll reported it ready, if the client
   * reset its connection in between (UNP 16.6). */
  if (set_nonblocking(lfd) < 0) {
    perror("fcntl(O_NONBLOCK)");
    return 1;
  }
  ref_install_stop_handlers();

  sigset_t stop_signals, wait_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask) < 0) {
    perror("sigprocmask");
    return 1;
  }
  /* wait_mask is the mask before blocking: what epoll_pwait installs while it waits. */

  int ep = ref_epoll_open(lfd);
  if (ep < 0) return 1;
  ref_announce(port); /* every descriptor it serves with exists now */

  return ref_epoll_serve(ep, lfd, cfg.handler, &wait_mask);
}
