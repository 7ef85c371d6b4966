/*
 * lab-nagle: request and reply on one connection, the reply written in two pieces (UNP 7.9:
 * TCP_NODELAY; RFC 896's Nagle algorithm meeting RFC 1122's delayed ACK).
 *
 *   lab-nagle [--write two|writev] [--nodelay no|yes] [--host 127.0.0.1] [--port 0]
 *
 * An iterative server. For each request line "ask\n" it answers a header line, "reply 100\n",
 * and a body of 100 bytes:
 *   --write two     two send() calls, the header then the body (write-write-read);
 *   --write writev  one writev() of both: one segment.
 * With Nagle's algorithm on (the default), the body is small and the header is not yet
 * acknowledged, so the kernel holds the body back until the header's ACK comes; the client has
 * nothing to send before it has the whole reply, so its kernel delays that ACK (40 ms or more on
 * Linux). --nodelay yes sets TCP_NODELAY on each accepted socket: the body leaves at once.
 *
 * Prints "listening <port>" once listening; SIGTERM or SIGINT end it (exit 0).
 */
#include "lab.h"

#include <netinet/tcp.h>
#include <sys/uio.h>

#define BODY_BYTES 100

static const char* const write_ways[] = {"two", "writev", NULL};
static const char* const yes_no[] = {"no", "yes", NULL};

/* What the command line chose. */
struct choices {
  int use_writev;
  int nodelay;
};

/* Every request answered until the client's EOF. Returns when it leaves (or a send fails). */
static void answer_each(int cfd, int use_writev) {
  static const char header[] = "reply 100\n";
  char body[BODY_BYTES];
  memset(body, 'x', sizeof body - 1);
  body[sizeof body - 1] = '\n';
  char request[64];
  while (lab_read_line(cfd, request, sizeof request) > 0) {
    if (use_writev) {
      struct iovec iov[2] = {{(void*)header, sizeof header - 1}, {body, sizeof body}};
      ssize_t want = (ssize_t)(sizeof header - 1 + sizeof body);
      if (writev(cfd, iov, 2) != want) return; /* 110 bytes, an empty send buffer: short is a failure */
    } else if (ref_send_all(cfd, header, sizeof header - 1) < 0 || ref_send_all(cfd, body, sizeof body) < 0) {
      return;
    }
  }
}

static void serve(int cfd, long k, void* arg) {
  (void)k;
  const struct choices* c = arg;
  int on = 1;
  if (c->nodelay && setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0) perror("setsockopt(TCP_NODELAY)");
  answer_each(cfd, c->use_writev);
  ref_close(cfd);
}

int main(int argc, char** argv) {
  struct choices c;
  c.use_writev = lab_take_choice(&argc, argv, "--write", write_ways, 0);
  c.nodelay = lab_take_choice(&argc, argv, "--nodelay", yes_no, 0);
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  ref_announce(port);
  return lab_serve_each(lfd, serve, &c);
}
