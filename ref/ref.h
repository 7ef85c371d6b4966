/*
 * What the reference servers share, in the spirit of Stevens' unp.h: argument parsing,
 * socket -> bind -> listen, the echo loop with short writes handled, UNP ch. 30's web_child()
 * (--handler rpc: lines naming a size, each answered with that many bytes, until the client
 * closes), and the stop signals.
 * Everything is static inline so each program stays one translation unit and unused helpers
 * cost no warning.
 *
 * Include this first: the feature-test macros must precede every system header. XSI (700)
 * brings POSIX.1-2008 plus sigaction's SA_* flags under -std=c11; _DEFAULT_SOURCE the BSD socket
 * option SO_REUSEPORT (ref-reuseport), which strict XSI hides.
 */
#ifndef REF_H
#define REF_H

#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* UNP's LISTENQ: enough that a burst of connects is queued, not dropped (the kernel caps it at
 * net.core.somaxconn). 511, Node's net.Server default and posix-servers' own: the benchmark
 * compares servers whose accept queues are the same length. */
#define REF_LISTENQ 511
#define REF_BUFSIZE 16384

struct ref_config {
  const char* host;
  int port;
  int handler;      /* --handler: REF_ECHO, REF_UPPER (echo with ASCII a-z as A-Z) or REF_RPC */
  int upper;        /* handler == REF_UPPER (the labs' echo loops test this) */
  int workers;      /* --workers N (pool servers): processes forked at start; default: CPUs */
  const char* lock; /* --lock KIND (ref-prefork: none|flock|mutex|pass; ref-prethread: mutex|main) */
};

/* The handlers (--handler echo|upper|rpc). */
#define REF_ECHO 0
#define REF_UPPER 1
#define REF_RPC 2

/* The arguments a program takes beyond --host, --port and --handler (ref_parse_args_for). */
#define REF_ARG_WORKERS 1
#define REF_ARG_LOCK 2
#define REF_ARG_RPC 4 /* --handler rpc is served (the reference servers; the labs only echo) */
#define REF_MAX_WORKERS 64

/* Set by the SIGTERM/SIGINT handler; the loops test it after every EINTR. */
static volatile sig_atomic_t ref_stop_requested = 0;
/* The descriptors the stop handler shuts down, so that a blocked accept() or recv() returns
 * even when the signal arrived just before the call, after the loop had tested the flag (the
 * race a flag alone leaves open). -1 when there is none. shutdown() is async-signal-safe. */
static volatile sig_atomic_t ref_listen_fd = -1;
static volatile sig_atomic_t ref_client_fd = -1;

/* ref-prefork's lock kinds, the first the default (ref_parse_args_for). */
static const char* const ref_prefork_locks[] = {"none", "flock", "mutex", "pass", NULL};

/* --handler rpc, UNP ch. 30's web_child() (3rd ed., section 30.5), as posix-servers' rpc handler
 * serves it (native/core/service.h): read a line, a decimal size ending in '\n' (a '\r' before it
 * tolerated); send that many bytes, the start of chargen's stream (RFC 864: line N is the 72
 * printable characters from character N mod 95, then CR LF); again, until the client closes;
 * then close. A last line ended by the client's EOF instead of '\n' is answered, as UNP's
 * readline() returns it. A size of 0 or over --rpc-max-bytes (default UNP's MAXN, 16384), a
 * non-digit, an empty line or one longer than REF_RPC_LINE_MAX: the connection is closed at once,
 * without a reply to that line (web_child's err_quit). */
#define REF_RPC_DEFAULT_MAX 16384L
#define REF_RPC_MAX_LIMIT (1L << 30)
#define REF_RPC_LINE_MAX 64
#define REF_RPC_INPUT 512
#define REF_CHARGEN_LINE 74
#define REF_CHARGEN_CYCLE (95 * REF_CHARGEN_LINE)

/* The stream's one cycle, and --rpc-max-bytes, set once at start (ref_parse_args_locks), before
 * any fork or thread. */
static char ref_chargen_cycle[REF_CHARGEN_CYCLE];
static long ref_rpc_max = REF_RPC_DEFAULT_MAX;

static inline void ref_chargen_init(void) {
  for (int i = 0; i < REF_CHARGEN_CYCLE; i++) {
    int line = i / REF_CHARGEN_LINE, col = i % REF_CHARGEN_LINE;
    ref_chargen_cycle[i] = col < 72 ? (char)(' ' + (line + col) % 95) : col == 72 ? '\r' : '\n';
  }
}

/* n bytes of the stream from position pos (< REF_CHARGEN_CYCLE) into out. */
static inline void ref_chargen_fill(char* out, size_t pos, size_t n) {
  while (n > 0) {
    size_t run = REF_CHARGEN_CYCLE - pos;
    if (run > n) run = n;
    memcpy(out, ref_chargen_cycle + pos, run);
    out += run;
    n -= run;
    pos = 0;
  }
}

/* One request line as it arrives. */
struct ref_line {
  size_t len; /* bytes of the line so far */
  long size;  /* the size named so far */
  int cr;     /* the last byte was '\r': only '\n' may follow */
};

/* Takes bytes of data[0..n) up to and including the line's '\n', *used of them. Returns the size
 * once the line is whole, -1 while more is needed, -2 when it is refused. */
static inline long ref_rpc_feed(struct ref_line* l, const char* data, size_t n, long max, size_t* used) {
  for (*used = 0; *used < n;) {
    char c = data[(*used)++];
    if (++l->len > REF_RPC_LINE_MAX) return -2;
    if (c == '\n') return l->size > 0 ? l->size : -2;
    if (l->cr || (c != '\r' && (c < '0' || c > '9'))) return -2;
    if (c == '\r') {
      l->cr = 1;
      continue;
    }
    l->size = l->size * 10 + (c - '0');
    if (l->size > max) return -2;
  }
  return -1;
}

static inline void ref_usage(const char* prog, int extra, const char* const* locks) {
  fprintf(stderr, "usage: %s [--host 127.0.0.1] [--port 0] [--handler echo|upper%s]%s%s", prog,
          (extra & REF_ARG_RPC) ? "|rpc" : "", (extra & REF_ARG_RPC) ? " [--rpc-max-bytes 16384]" : "",
          (extra & REF_ARG_WORKERS) ? " [--workers N]" : "");
  if (extra & REF_ARG_LOCK) {
    fprintf(stderr, " [--lock ");
    for (int k = 0; locks[k] != NULL; k++) fprintf(stderr, "%s%s", k > 0 ? "|" : "", locks[k]);
    fprintf(stderr, "]");
  }
  fprintf(stderr, "\n");
  exit(2);
}

/* `extra`: REF_ARG_* for the arguments this program takes besides the common three; `locks`: the
 * program's --lock kinds (NULL-terminated, the first the default). */
static inline void ref_parse_args_locks(int argc, char** argv, struct ref_config* cfg, int extra,
                                        const char* const* locks) {
  cfg->host = "127.0.0.1";
  cfg->port = 0;
  cfg->handler = REF_ECHO;
  cfg->upper = 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cfg->workers = cpus < 1 ? 1 : cpus > REF_MAX_WORKERS ? REF_MAX_WORKERS : (int)cpus;
  cfg->lock = locks[0];
  for (int i = 1; i < argc; i++) {
    const char* opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) ref_usage(argv[0], extra, locks);
    if (i + 1 >= argc) {
      fprintf(stderr, "%s: %s needs a value\n", argv[0], opt);
      ref_usage(argv[0], extra, locks);
    }
    const char* val = argv[++i];
    if (strcmp(opt, "--host") == 0) {
      cfg->host = val;
    } else if (strcmp(opt, "--port") == 0) {
      char* end = NULL;
      errno = 0;
      long p = strtol(val, &end, 10);
      if (errno != 0 || end == val || *end != '\0' || p < 0 || p > 65535) {
        fprintf(stderr, "%s: --port must be an integer from 0 to 65535, got '%s'\n", argv[0], val);
        exit(2);
      }
      cfg->port = (int)p;
    } else if (strcmp(opt, "--handler") == 0) {
      if (strcmp(val, "echo") == 0)
        cfg->handler = REF_ECHO;
      else if (strcmp(val, "upper") == 0)
        cfg->handler = REF_UPPER;
      else if ((extra & REF_ARG_RPC) && strcmp(val, "rpc") == 0)
        cfg->handler = REF_RPC;
      else {
        fprintf(stderr, "%s: --handler must be echo, upper%s, got '%s'\n", argv[0],
                (extra & REF_ARG_RPC) ? " or rpc" : "", val);
        exit(2);
      }
    } else if ((extra & REF_ARG_RPC) && strcmp(opt, "--rpc-max-bytes") == 0) {
      char* end = NULL;
      errno = 0;
      long m = strtol(val, &end, 10);
      if (errno != 0 || end == val || *end != '\0' || m < 1 || m > REF_RPC_MAX_LIMIT) {
        fprintf(stderr, "%s: --rpc-max-bytes must be an integer from 1 to %ld, got '%s'\n", argv[0], REF_RPC_MAX_LIMIT,
                val);
        exit(2);
      }
      ref_rpc_max = m;
    } else if ((extra & REF_ARG_WORKERS) && strcmp(opt, "--workers") == 0) {
      char* end = NULL;
      errno = 0;
      long w = strtol(val, &end, 10);
      if (errno != 0 || end == val || *end != '\0' || w < 1 || w > REF_MAX_WORKERS) {
        fprintf(stderr, "%s: --workers must be an integer from 1 to %d, got '%s'\n", argv[0], REF_MAX_WORKERS, val);
        exit(2);
      }
      cfg->workers = (int)w;
    } else if ((extra & REF_ARG_LOCK) && strcmp(opt, "--lock") == 0) {
      cfg->lock = NULL;
      for (int k = 0; locks[k] != NULL; k++) {
        if (strcmp(val, locks[k]) == 0) cfg->lock = locks[k];
      }
      if (cfg->lock == NULL) {
        fprintf(stderr, "%s: unknown --lock '%s'\n", argv[0], val);
        ref_usage(argv[0], extra, locks);
      }
    } else {
      fprintf(stderr, "%s: unknown option '%s'\n", argv[0], opt);
      ref_usage(argv[0], extra, locks);
    }
  }
  cfg->upper = cfg->handler == REF_UPPER;
  if (cfg->handler == REF_RPC) ref_chargen_init();
}

static inline void ref_parse_args_for(int argc, char** argv, struct ref_config* cfg, int extra) {
  ref_parse_args_locks(argc, argv, cfg, extra, ref_prefork_locks);
}

static inline void ref_parse_args(int argc, char** argv, struct ref_config* cfg) {
  ref_parse_args_for(argc, argv, cfg, 0);
}

static inline void ref_close(int fd) {
  /* Never retried on EINTR: on Linux the descriptor is released even when close() says so, and
   * a retry could close a descriptor another thread has just been given. */
  if (close(fd) < 0 && errno != EINTR) perror("close");
}

/* socket -> bind -> listen on a numeric IPv4 or IPv6 address. Returns the listening descriptor
 * and stores the port actually bound (the kernel's choice for port 0); exits on failure, since
 * a server that cannot listen has nothing else to do. `reuseport`: SO_REUSEPORT before bind(),
 * so that other sockets of the same user may listen on the same address and port. */
static inline int ref_listen_on(const struct ref_config* cfg, int port, int reuseport, int* bound_port) {
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in* in4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* in6 = (struct sockaddr_in6*)&ss;
  if (inet_pton(AF_INET, cfg->host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    len = sizeof *in4;
  } else if (inet_pton(AF_INET6, cfg->host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    len = sizeof *in6;
  } else {
    fprintf(stderr, "--host must be a numeric IPv4 or IPv6 address, got '%s'\n", cfg->host);
    exit(2);
  }

  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) {
    perror("socket");
    exit(1);
  }
  /* A restarted server must be able to bind while its old connections sit in TIME_WAIT. */
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0) {
    perror("setsockopt(SO_REUSEADDR)");
    exit(1);
  }
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) {
    perror("setsockopt(SO_REUSEPORT)");
    exit(1);
  }
  if (bind(fd, (struct sockaddr*)&ss, len) < 0) {
    perror("bind");
    exit(1);
  }
  if (listen(fd, REF_LISTENQ) < 0) {
    perror("listen");
    exit(1);
  }
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr*)&ss, &len) < 0) {
    perror("getsockname");
    exit(1);
  }
  *bound_port = ntohs(ss.ss_family == AF_INET6 ? in6->sin6_port : in4->sin_port);
  return fd;
}

static inline int ref_listen(const struct ref_config* cfg, int* bound_port) {
  return ref_listen_on(cfg, cfg->port, 0, bound_port);
}

/* The one line a supervisor waits for. Flushed at once: stdout is a pipe, hence fully buffered,
 * and a forked child must not inherit (and later repeat) unflushed output. */
static inline void ref_announce(int port) {
  if (printf("listening %d\n", port) < 0 || fflush(stdout) == EOF) {
    perror("stdout");
    exit(1);
  }
}

static void ref_on_stop(int signo) {
  (void)signo;
  int saved = errno; /* the interrupted code may be about to read errno */
  ref_stop_requested = 1;
  if (ref_listen_fd >= 0) shutdown(ref_listen_fd, SHUT_RDWR);
  if (ref_client_fd >= 0) shutdown(ref_client_fd, SHUT_RDWR);
  errno = saved;
}

/* SIGTERM and SIGINT end the server. No SA_RESTART: a blocked accept()/recv() must return EINTR
 * so the loop sees the flag. SIGPIPE is ignored as a second line of defence behind MSG_NOSIGNAL. */
static inline void ref_install_stop_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ref_on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
    perror("sigaction");
    exit(1);
  }
  sa.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, &sa, NULL) < 0) {
    perror("sigaction(SIGPIPE)");
    exit(1);
  }
}

/* The CPU time (µs, user + system) of the children this process has reaped, with what they reaped
 * themselves: wait4()'s rusage, added up by ref_reap(). /proc keeps a reaped child's time only in
 * its parent's cutime and cstime, in 10 ms ticks; the benchmark asks for this sum instead
 * (ref_install_report_handler). Written only with SIGUSR2 blocked (the SIGCHLD handler, or the
 * main loop with every signal blocked), so the report never reads it half-written. */
static volatile long ref_reaped_cpu_us = 0;

/* waitpid(pid, status, options), as wait4() (the same system call in glibc, async-signal-safe),
 * adding the child's CPU time to ref_reaped_cpu_us. */
static inline pid_t ref_reap(pid_t pid, int* status, int options) {
  struct rusage ru;
  pid_t got = wait4(pid, status, options, &ru);
  if (got > 0) {
    ref_reaped_cpu_us += (long)ru.ru_utime.tv_sec * 1000000L + (long)ru.ru_utime.tv_usec +
                         (long)ru.ru_stime.tv_sec * 1000000L + (long)ru.ru_stime.tv_usec;
  }
  return got;
}

/* SIGUSR2: write "reaped-cpu-us N" on stdout, one line, async-signal-safe (no stdio). */
static void ref_on_report(int signo) {
  (void)signo;
  int saved = errno;
  char line[48] = "reaped-cpu-us ";
  char digits[24];
  int n = 0;
  unsigned long v = (unsigned long)ref_reaped_cpu_us;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  size_t len = strlen(line);
  while (n > 0) line[len++] = digits[--n];
  line[len++] = '\n';
  ssize_t w = write(STDOUT_FILENO, line, len); /* one short write to a pipe: atomic */
  (void)w;
  errno = saved;
}

/* For a server that reaps children while it serves (ref-fork): SIGUSR2 reports ref_reaped_cpu_us.
 * SA_RESTART, so that no call of the server sees the report; every other signal blocked while it
 * runs, so that it never interrupts ref_reap() halfway. */
static inline void ref_install_report_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ref_on_report;
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR2, &sa, NULL) < 0) {
    perror("sigaction(SIGUSR2)");
    exit(1);
  }
}

static inline void ref_transform(char* buf, size_t n, int upper) {
  if (!upper) return;
  for (size_t i = 0; i < n; i++) {
    if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = (char)(buf[i] - 'a' + 'A');
  }
}

/* UNP's writen(): send() may write less than asked (a full socket buffer, a signal); loop until
 * all n bytes are out. Returns 0, or -1 (reported, but for a client that went away or a stop). */
static inline int ref_send_all(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) {
        if (ref_stop_requested) return -1;
        continue;
      }
      if (errno != EPIPE && errno != ECONNRESET && !ref_stop_requested) perror("send");
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Blocking recv() of up to n bytes, EINTR retried unless a stop was requested. Returns the bytes
 * read, 0 at the client's EOF, REF_RECV_STOPPED when a stop was requested, -1 on an I/O error
 * (reported, but for a client's reset). */
#define REF_RECV_STOPPED (-2)
static inline ssize_t ref_recv(int fd, char* buf, size_t n) {
  for (;;) {
    ssize_t got = recv(fd, buf, n, 0);
    if (got >= 0) return got;
    if (errno == EINTR) {
      if (ref_stop_requested) return REF_RECV_STOPPED;
      continue;
    }
    if (errno != ECONNRESET) perror("recv");
    return -1;
  }
}

/* UNP's str_echo(), blocking: read what arrives, send it back, until the client's EOF.
 * Returns 0 on EOF (or a requested stop), -1 on an I/O error (reported). */
static inline int ref_echo(int fd, int upper) {
  char buf[REF_BUFSIZE];
  for (;;) {
    ssize_t n = ref_recv(fd, buf, sizeof buf);
    if (n == 0 || n == REF_RECV_STOPPED) return 0;
    if (n < 0) return -1;
    ref_transform(buf, (size_t)n, upper);
    if (ref_send_all(fd, buf, (size_t)n) < 0) return -1;
  }
}

/* One reply: `size` bytes of chargen's stream from its start. Returns 0, or -1. */
static inline int ref_rpc_reply(int fd, long size, char* buf, size_t cap) {
  size_t pos = 0;
  while (size > 0) {
    size_t chunk = (size_t)size < cap ? (size_t)size : cap;
    ref_chargen_fill(buf, pos, chunk);
    if (ref_send_all(fd, buf, chunk) < 0) return -1;
    pos = (pos + chunk) % REF_CHARGEN_CYCLE;
    size -= (long)chunk;
  }
  return 0;
}

/* UNP's web_child(), blocking: read a line, send the size it names, again, until the client
 * closes (it closes first: the TIME_WAIT is its own); the caller closes then. Several lines read
 * at once (pipelined) are answered in turn. Returns 0 at the client's EOF (or a stop), -1 on an
 * I/O error or a refused line. */
static inline int ref_rpc(int fd) {
  char in[REF_RPC_INPUT];
  char buf[REF_BUFSIZE];
  size_t at = 0, len = 0, used;
  struct ref_line line = {0, 0, 0};
  for (;;) {
    if (at == len) {
      ssize_t n = ref_recv(fd, in, sizeof in);
      if (n == REF_RECV_STOPPED) return 0;
      if (n < 0) return -1;
      if (n == 0) { /* between lines: done; within one: readline() returns it as it is */
        if (line.len == 0) return 0;
        return line.size > 0 ? ref_rpc_reply(fd, line.size, buf, sizeof buf) : -1;
      }
      at = 0;
      len = (size_t)n;
    }
    long want = ref_rpc_feed(&line, in + at, len - at, ref_rpc_max, &used);
    at += used;
    if (want == -2) return -1;
    if (want > 0) {
      if (ref_rpc_reply(fd, want, buf, sizeof buf) < 0) return -1;
      memset(&line, 0, sizeof line);
    }
  }
}

/* One client, blocking, with the --handler chosen. */
static inline int ref_serve(int fd, int handler) {
  return handler == REF_RPC ? ref_rpc(fd) : ref_echo(fd, handler == REF_UPPER);
}

/* accept() errors that concern one client, or a passing shortage, not the server (UNP 5.11,
 * 16.6, and accept(2): Linux passes pending network errors of the new socket to accept). */
static inline int ref_accept_error_is_transient(int err) {
  switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return 1;
    default:
      return 0;
  }
}

/* Out of descriptors or memory: the pending client cannot be taken now. Back off a little
 * instead of spinning on an accept() that fails at once. Returns 1 if err was such a shortage. */
static inline int ref_accept_backoff(int err) {
  if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) return 0;
  struct timespec ts = {0, 10 * 1000 * 1000};
  nanosleep(&ts, NULL); /* EINTR only shortens the pause */
  return 1;
}

#endif /* REF_H */
