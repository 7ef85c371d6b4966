/*
 * lab-lingering-close: a server that answers before it has read everything the client sent, then
 * closes (UNP 7.5's SO_LINGER discussion; Apache's "lingering close").
 *
 *   lab-lingering-close [--close plain|linger] [--reply BYTES] [--host 127.0.0.1] [--port 0]
 *
 * An iterative server. For each client: read the request line (byte by byte up to its '\n': the
 * body the client sends after it is never read), send a reply of BYTES bytes (default 1 MiB)
 * — send() returns once the kernel holds all of it, not once the client has it — then:
 *   plain   close(): bytes the server never read are still in its receive buffer, and Linux's
 *           close() then resets the connection (RFC 2525, 2.17): it sends RST and discards the
 *           part of the reply not yet sent. The client loses it, and its read fails with
 *           ECONNRESET instead of reaching EOF.
 *   linger  shutdown(SHUT_WR) (a FIN after the last byte of the reply), then read and throw away
 *           what the client sends until its EOF (at most 2 s per read, 10 s in all), then
 *           close(): nothing is left unread, nothing is reset.
 *
 * Prints "listening <port>" once listening, then per client "replied <k> <bytes>",
 * "unread <k> <bytes>" (what its receive buffer held then, ioctl FIONREAD), with linger
 * "shutdown <k>" and "drained <k> <bytes> <eof|timeout|error>", and "closed <k>". SIGTERM or
 * SIGINT end it (exit 0).
 */
#include "lab.h"

#include <poll.h>
#include <sys/ioctl.h>

#define LINGER_READ_MS 2000
#define LINGER_TOTAL_MS 10000

static const char* const close_ways[] = {"plain", "linger", NULL};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Apache's lingering close: read until the client's EOF, within the time limits. Returns what
 * was read; *how says why it stopped. */
static long drain_until_eof(int cfd, const char** how) {
  char buf[REF_BUFSIZE];
  long total = 0;
  long long end = now_ms() + LINGER_TOTAL_MS;
  for (;;) {
    long long left = end - now_ms();
    struct pollfd p = {cfd, POLLIN, 0};
    int rc = poll(&p, 1, (int)(left < LINGER_READ_MS ? (left > 0 ? left : 0) : LINGER_READ_MS));
    if (rc < 0 && errno == EINTR && !ref_stop_requested) continue;
    if (rc <= 0) {
      *how = rc == 0 ? "timeout" : "error";
      return total;
    }
    ssize_t n = ref_recv(cfd, buf, sizeof buf);
    if (n <= 0) {
      *how = n == 0 ? "eof" : "error";
      return total;
    }
    total += (long)n;
  }
}

/* The reply, and how to close after it. */
struct reply {
  int linger;
  const char* bytes;
  long size;
};

static void answer(int cfd, long k, int linger, const char* reply, long reply_bytes) {
  char request[256];
  if (lab_read_line(cfd, request, sizeof request) <= 0) return;
  if (ref_send_all(cfd, reply, (size_t)reply_bytes) < 0) return;
  lab_say("replied %ld %ld", k, reply_bytes);
  int unread = 0;
  if (ioctl(cfd, FIONREAD, &unread) < 0) unread = -1;
  lab_say("unread %ld %d", k, unread);
  if (linger) {
    shutdown(cfd, SHUT_WR);
    lab_say("shutdown %ld", k);
    const char* how = "eof";
    long drained = drain_until_eof(cfd, &how);
    lab_say("drained %ld %ld %s", k, drained, how);
  }
}

static void serve(int cfd, long k, void* arg) {
  const struct reply* r = arg;
  answer(cfd, k, r->linger, r->bytes, r->size);
  ref_close(cfd);
  lab_say("closed %ld", k);
}

int main(int argc, char** argv) {
  struct reply r;
  r.linger = lab_take_choice(&argc, argv, "--close", close_ways, 0);
  r.size = lab_take_long(&argc, argv, "--reply", 1, 64L << 20, 1L << 20);
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  /* The reply: 64-byte lines, each of one letter, a to z in turn. */
  char* bytes = malloc((size_t)r.size);
  if (bytes == NULL) {
    perror("malloc");
    return 1;
  }
  for (long i = 0; i < r.size; i++) bytes[i] = (char)(i % 64 == 63 ? '\n' : 'a' + (i / 64) % 26);
  r.bytes = bytes;

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  ref_announce(port);
  int status = lab_serve_each(lfd, serve, &r);
  free(bytes);
  return status;
}
