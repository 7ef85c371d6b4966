/*
 * lab-sigpipe: an iterative server that writes to a client which has gone (UNP 5.12, 5.13).
 *
 *   lab-sigpipe [--sigpipe default|nosignal|ignore] [--host 127.0.0.1] [--port 0]
 *
 * For each client: read its question up to the client's EOF (a client half-closes with
 * shutdown(SHUT_WR) when it has asked), then send the answer in REPLY_LINES lines, 20 ms apart,
 * one send() each, and stop at the first send() that fails. A client that close()d instead has no
 * socket left to take the first line: its kernel answers it with RST. The next send() then fails
 * with EPIPE, and the kernel also sends the writer SIGPIPE, whose default action ends the process:
 * --sigpipe default (the naive server) dies of signal 13 there, and every client after it finds
 * nobody listening. The fixes keep serving:
 *   nosignal  each send() with MSG_NOSIGNAL: no signal, send() returns -1 with errno EPIPE;
 *   ignore    signal(SIGPIPE, SIG_IGN) at start: the same, for every write of the process.
 *
 * Prints "listening <port>" once listening, then per client "sent <k> <line>" for each line sent
 * and "failed <k> <line> errno <n>" or "served <k>" at its end. SIGTERM or SIGINT end it (exit 0).
 */
#include "lab.h"

#define REPLY_LINES 10

static const char* const sigpipe_ways[] = {"default", "nosignal", "ignore", NULL};
enum { SIGPIPE_DEFAULT, SIGPIPE_NOSIGNAL, SIGPIPE_IGNORE };

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !ref_stop_requested) {
  }
}

/* One client: the question, up to its EOF; then the answer. */
static void answer(int cfd, long k, int way) {
  char question[REF_BUFSIZE];
  ssize_t n;
  while ((n = ref_recv(cfd, question, sizeof question)) > 0) {
  }
  if (n < 0) return;
  const int flags = way == SIGPIPE_NOSIGNAL ? MSG_NOSIGNAL : 0;
  char line[64];
  for (int i = 1; i <= REPLY_LINES && !ref_stop_requested; i++) {
    int len = snprintf(line, sizeof line, "line %d of the answer\n", i);
    if (send(cfd, line, (size_t)len, flags) < 0) { /* default: SIGPIPE has ended us before this */
      lab_say("failed %ld %d errno %d", k, i, errno);
      return;
    }
    lab_say("sent %ld %d", k, i);
    pause_ms(20);
  }
  lab_say("served %ld", k);
}

static void answer_and_close(int cfd, long k, void* way) {
  answer(cfd, k, *(int*)way);
  ref_close(cfd);
}

int main(int argc, char** argv) {
  int way = lab_take_choice(&argc, argv, "--sigpipe", sigpipe_ways, SIGPIPE_DEFAULT);
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers(); /* it ignores SIGPIPE, as every reference server does: */
  if (signal(SIGPIPE, way == SIGPIPE_IGNORE ? SIG_IGN : SIG_DFL) == SIG_ERR) {
    perror("signal(SIGPIPE)");
    return 1;
  }
  ref_announce(port);
  return lab_serve_each(lfd, answer_and_close, &way);
}
