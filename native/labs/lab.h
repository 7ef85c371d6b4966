/*
 * What the servers of the traps' labs share, on top of ref.h: their own options, taken out of argv
 * before ref_parse_args() reads the rest; a listener that makes the choices ref_listen() makes for
 * every reference server (SO_REUSEADDR, a backlog of 511) only when asked; an iterative server's
 * accept loop.
 *
 * Each of these servers has a naive way and the fix, chosen on its command line: the lab runs
 * both side by side, and its tests run the naive one with the fix switched on, to see the lab
 * notice that the trap did not happen.
 */
#ifndef LAB_H
#define LAB_H

#include "ref.h"

#include <stdarg.h>

/* Takes "--NAME VALUE" out of argv, VALUE one of `choices` (NULL-terminated); returns its index,
 * `fallback` when the option is absent. Any other value: a line on stderr, exit 2. */
static inline int lab_take_choice(int* argc, char** argv, const char* name, const char* const* choices, int fallback) {
  int out = 1, found = fallback;
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], name) != 0) {
      argv[out++] = argv[i];
      continue;
    }
    const char* val = i + 1 < *argc ? argv[++i] : "";
    found = -1;
    for (int k = 0; choices[k] != NULL; k++)
      if (strcmp(val, choices[k]) == 0) found = k;
    if (found < 0) {
      fprintf(stderr, "%s: %s must be one of", argv[0], name);
      for (int k = 0; choices[k] != NULL; k++) fprintf(stderr, " %s", choices[k]);
      fprintf(stderr, "; got '%s'\n", val);
      exit(2);
    }
  }
  *argc = out;
  return found;
}

/* Takes "--NAME N" out of argv, N an integer from lo to hi; `fallback` when absent. Another value:
 * a line on stderr, exit 2. */
static inline long lab_take_long(int* argc, char** argv, const char* name, long lo, long hi, long fallback) {
  int out = 1;
  long found = fallback;
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], name) != 0) {
      argv[out++] = argv[i];
      continue;
    }
    const char* val = i + 1 < *argc ? argv[++i] : "";
    char* end = NULL;
    errno = 0;
    found = strtol(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || found < lo || found > hi) {
      fprintf(stderr, "%s: %s must be an integer from %ld to %ld, got '%s'\n", argv[0], name, lo, hi, val);
      exit(2);
    }
  }
  *argc = out;
  return found;
}

/* socket -> setsockopt(SO_REUSEADDR) only if `reuseaddr` -> bind -> listen(fd, backlog), on the
 * IPv4 address cfg->host (the labs listen on 127.0.0.1). Returns the listener and stores the port
 * bound. A failing call is one line on stderr, "<call> errno <n> (<text>)", and exit 1: the lab
 * reads the errno from it. */
static inline int lab_listen(const struct ref_config* cfg, int reuseaddr, int backlog, int* bound_port) {
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)cfg->port);
  if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
    fprintf(stderr, "--host must be a numeric IPv4 address, got '%s'\n", cfg->host);
    exit(2);
  }
  const char* failed = NULL;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  socklen_t len = sizeof addr;
  if (fd < 0)
    failed = "socket";
  else if (reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
    failed = "setsockopt(SO_REUSEADDR)";
  else if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0)
    failed = "bind";
  else if (listen(fd, backlog) < 0)
    failed = "listen";
  else if (getsockname(fd, (struct sockaddr*)&addr, &len) < 0)
    failed = "getsockname";
  if (failed != NULL) {
    int err = errno;
    fprintf(stderr, "%s errno %d (%s)\n", failed, err, strerror(err));
    exit(1);
  }
  *bound_port = ntohs(addr.sin_port);
  return fd;
}

/* Reads one request line, byte by byte up to its '\n' (what follows stays unread in the socket).
 * Returns its length with the '\n', 0 at EOF before it, -1 on an error (errno) or a stop. */
static inline ssize_t lab_read_line(int fd, char* line, size_t cap) {
  size_t n = 0;
  while (n < cap) {
    ssize_t got = ref_recv(fd, line + n, 1);
    if (got <= 0) return got == 0 ? 0 : -1;
    if (line[n++] == '\n') return (ssize_t)n;
  }
  return (ssize_t)n; /* longer than cap: what fitted */
}

/* The iterative server's loop, as ref-iterative's: accept() (EINTR, a client's own error or a
 * passing shortage tried again), then serve(cfd, k, arg) for the k-th client — which owns cfd and
 * closes it, each lab in its own way — until a stop is requested; then lfd is closed. Returns the
 * exit status: 0, or 1 when accept() failed for good (reported). */
static inline int lab_serve_each(int lfd, void (*serve)(int cfd, long k, void* arg), void* arg) {
  int status = 0;
  long clients = 0;
  while (!ref_stop_requested) {
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) {
      if (errno == EINTR || ref_stop_requested) continue; /* the loop condition decides */
      if (ref_accept_error_is_transient(errno) || ref_accept_backoff(errno)) continue;
      perror("accept");
      status = 1;
      break;
    }
    /* Published before the flag is tested again: a stop from here on shuts the client down. */
    ref_client_fd = cfd;
    if (!ref_stop_requested)
      serve(cfd, ++clients, arg);
    else
      ref_close(cfd);
    ref_client_fd = -1;
  }
  ref_listen_fd = -1;
  ref_close(lfd);
  return status;
}

/* One line on stdout, flushed at once: the lab reads it as it comes. */
static inline void lab_say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void lab_say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

#endif /* LAB_H */
