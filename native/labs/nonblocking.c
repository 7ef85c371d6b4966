/*
 * lab-nonblocking: the lecture's "fix 1" (point 4), with its flaws, on purpose.
 *
 *   lab-nonblocking [--host 127.0.0.1] [--port 0]
 *
 * The naive server blocks in read(cfd) and cannot accept anyone else meanwhile. Fix 1 makes the
 * descriptors non-blocking with fcntl(O_NONBLOCK) and polls: try accept(), try read(cfd), again.
 * (lfd must be non-blocking too, or the loop would block in accept() and never read cfd.)
 * Both flaws the lecture names are kept:
 *   - the loop never sleeps: with nothing to do it calls accept() and read() over and over,
 *     each failing with EAGAIN, and burns a whole CPU core while idle;
 *   - there is one variable cfd: a second client overwrites it, and the first client is never
 *     read again, nor closed (its descriptor stays open in the process, unreachable).
 *
 * Prints "listening <port>" once listening; SIGTERM or SIGINT end it (exit 0).
 */
#include "ref.h"

#include <fcntl.h>

static void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    perror("fcntl(O_NONBLOCK)");
    exit(1);
  }
}

/* The echo's write on a non-blocking socket: a full send buffer is EAGAIN, and this loop spins
 * on it like the rest of the program. Returns 0, or -1 when the client is gone. */
static int send_spinning(int fd, const char* buf, size_t n) {
  while (n > 0 && !ref_stop_requested) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_install_stop_handlers();
  set_nonblocking(lfd);
  ref_announce(port);

  int cfd = -1; /* the lecture's one variable: only the last client's descriptor */
  char buf[REF_BUFSIZE];
  int status = 0;
  while (!ref_stop_requested) {
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0) {
      set_nonblocking(fd);
      cfd = fd; /* the previous client's descriptor, if any, is lost here: never read, never closed */
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && !ref_accept_error_is_transient(errno) &&
               !ref_accept_backoff(errno)) {
      perror("accept");
      status = 1;
      break;
    }
    if (cfd < 0) continue; /* nobody yet: straight back to accept() */

    ssize_t n = read(cfd, buf, sizeof buf);
    if (n > 0) {
      ref_transform(buf, (size_t)n, cfg.upper);
      if (send_spinning(cfd, buf, (size_t)n) < 0) {
        ref_close(cfd);
        cfd = -1;
      }
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      ref_close(cfd); /* the client closed (or failed) */
      cfd = -1;
    }
    /* n < 0 with EAGAIN: nothing to read now; loop at once (this is the spin) */
  }

  if (cfd >= 0) ref_close(cfd);
  ref_close(lfd);
  return status;
}
