/*
 * The event loop of ref-epoll and ref-reuseport: one thread, many clients, UNP chapter 6 and 16's
 * non-blocking I/O with Linux's epoll in place of select.
 *
 * Level-triggered: epoll reports a descriptor for as long as it is ready, so a handler may do
 * one read per wake-up and leave the rest for the next epoll_wait, which keeps one busy client
 * from starving the others.
 *
 * Flow control: when a client does not read its echo fast enough, send() comes up short; the
 * rest is kept and the connection switches from EPOLLIN to EPOLLOUT, so nothing more is read
 * from that client until its pending echo is out (the server's memory per client stays bounded).
 *
 * --handler rpc (ref.h, UNP's web_child()): what one read brings is parsed a line at a time; each
 * whole line's reply is sent a buffer at a time from chargen's stream, switching to EPOLLOUT while
 * the socket is full, and the next line is taken only when it is out. The client's EOF, once every
 * line read before it is answered, closes the connection; a refused line closes it at once.
 *
 * Stop signals are blocked except inside epoll_pwait, which unblocks them atomically while it
 * waits (the pselect pattern): a SIGTERM can never slip in between the flag test and the wait.
 *
 * Include after ref.h.
 */
#ifndef REF_EPOLL_LOOP_H
#define REF_EPOLL_LOOP_H

#include <fcntl.h>
#include <sys/epoll.h>

#define MAX_EVENTS 256

struct conn {
  struct conn *prev, *next; /* every live client, so shutdown can close and free them all */
  int fd;
  size_t pending;       /* bytes of buf still to send */
  size_t offset;        /* where they start */
  uint32_t events;      /* what epoll watches for: EPOLLIN or EPOLLOUT */
  struct ref_line line; /* rpc: the request line so far */
  long reply_left;      /* rpc: reply bytes not yet put in buf */
  size_t reply_pos;     /* rpc: where the reply is in chargen's cycle */
  size_t in_at, in_len; /* rpc: the unparsed part of `in` */
  int in_ended;         /* rpc: the client's EOF was read */
  char in[REF_RPC_INPUT];
  char buf[REF_BUFSIZE];
};

static int set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0) return -1;
  return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int watch(int ep, int op, struct conn* c, uint32_t events) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.ptr = c;
  return epoll_ctl(ep, op, c->fd, &ev);
}

/* Watches c for `events` (EPOLLIN or EPOLLOUT), if it does not already. */
static int interest(int ep, struct conn* c, uint32_t events) {
  if (c->events == events) return 0;
  if (watch(ep, EPOLL_CTL_MOD, c, events) < 0) {
    perror("epoll_ctl(MOD)");
    return -1;
  }
  c->events = events;
  return 0;
}

static struct conn* clients = NULL;

/* close() also removes the descriptor from the epoll set (it is its only reference). */
static void drop(struct conn* c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    clients = c->next;
  if (c->next) c->next->prev = c->prev;
  ref_close(c->fd);
  free(c);
}

/* Sends what is pending. Returns 1 when all of it is out, 0 when the socket is full, -1 on error. */
static int flush_pending(struct conn* c) {
  while (c->pending > 0) {
    ssize_t w = send(c->fd, c->buf + c->offset, c->pending, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno != EPIPE && errno != ECONNRESET) perror("send");
      return -1;
    }
    c->offset += (size_t)w;
    c->pending -= (size_t)w;
  }
  return 1;
}

/* rpc: sends the reply, refilling buf from chargen's stream. Returns 1 when all of it is out, 0
 * when the socket is full, -1 on error. */
static int flush_reply(struct conn* c) {
  for (;;) {
    int rc = flush_pending(c);
    if (rc <= 0) return rc;
    if (c->reply_left == 0) return 1;
    size_t chunk = (size_t)c->reply_left < sizeof c->buf ? (size_t)c->reply_left : sizeof c->buf;
    ref_chargen_fill(c->buf, c->reply_pos, chunk);
    c->reply_pos = (c->reply_pos + chunk) % REF_CHARGEN_CYCLE;
    c->reply_left -= (long)chunk;
    c->offset = 0;
    c->pending = chunk;
  }
}

/* rpc: the reply in flight, then every line already read, each answered in turn. Returns 0 to
 * wait (for EPOLLOUT while a reply is unsent, else EPOLLIN), -1 to drop: a refused line, an error,
 * or the client's EOF once everything before it is answered (it closed first). */
static int answer_requests(int ep, struct conn* c) {
  for (;;) {
    int rc = flush_reply(c);
    if (rc < 0) return -1;
    if (rc == 0) return interest(ep, c, EPOLLOUT);
    long want;
    if (c->in_at < c->in_len) {
      size_t used;
      want = ref_rpc_feed(&c->line, c->in + c->in_at, c->in_len - c->in_at, ref_rpc_max, &used);
      c->in_at += used;
    } else if (c->in_ended) {
      if (c->line.len == 0) return -1;             /* between lines: the client is done */
      want = c->line.size > 0 ? c->line.size : -2; /* within one: readline() returns it */
    } else {
      return interest(ep, c, EPOLLIN);
    }
    if (want == -2) return -1; /* refused: closed without a reply to that line */
    if (want > 0) {
      c->reply_left = want;
      c->reply_pos = 0;
      memset(&c->line, 0, sizeof c->line);
    }
  }
}

/* rpc, readable (only once every line read before is answered): one read, then the answers. */
static int on_request(int ep, struct conn* c) {
  ssize_t n = recv(c->fd, c->in, sizeof c->in, 0);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno != ECONNRESET) perror("recv");
    return -1;
  }
  c->in_at = 0;
  c->in_len = (size_t)n;
  if (n == 0) c->in_ended = 1;
  return answer_requests(ep, c);
}

/* The client is readable (or hung up): one read, one echo. Returns -1 when it must be dropped. */
static int on_readable(int ep, struct conn* c, int handler) {
  if (handler == REF_RPC) return on_request(ep, c);
  ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
  if (n == 0) return -1; /* EOF: the client is done */
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return 0; /* next wake-up */
    if (errno != ECONNRESET) perror("recv");
    return -1;
  }
  ref_transform(c->buf, (size_t)n, handler == REF_UPPER);
  c->offset = 0;
  c->pending = (size_t)n;
  int rc = flush_pending(c);
  if (rc < 0) return -1;
  return rc == 0 ? interest(ep, c, EPOLLOUT) : 0;
}

/* The client can take more of its pending echo (rpc: of its reply, then the lines read after it). */
static int on_writable(int ep, struct conn* c, int handler) {
  if (handler == REF_RPC) return answer_requests(ep, c);
  int rc = flush_pending(c);
  if (rc < 0) return -1;
  return rc == 1 ? interest(ep, c, EPOLLIN) : 0;
}

/* The listener is readable: accept everything that is queued (it is non-blocking). */
static void on_listener(int ep, int lfd) {
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int cfd = accept(lfd, (struct sockaddr*)&peer, &plen);
    if (cfd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || ref_accept_error_is_transient(errno)) continue;
      /* Out of descriptors: level-triggered epoll would report the listener again at once, so
       * back off before returning to the loop rather than spin. */
      if (ref_accept_backoff(errno)) return;
      perror("accept");
      return;
    }
    if (set_nonblocking(cfd) < 0) {
      perror("fcntl(O_NONBLOCK)");
      ref_close(cfd);
      continue;
    }
    struct conn* c = malloc(sizeof *c);
    if (c == NULL) {
      fprintf(stderr, "malloc: out of memory; dropping a client\n");
      ref_close(cfd);
      continue;
    }
    c->fd = cfd;
    c->pending = 0;
    c->offset = 0;
    c->events = EPOLLIN;
    memset(&c->line, 0, sizeof c->line);
    c->reply_left = 0;
    c->reply_pos = 0;
    c->in_at = 0;
    c->in_len = 0;
    c->in_ended = 0;
    c->prev = NULL;
    c->next = clients;
    if (clients) clients->prev = c;
    clients = c;
    if (watch(ep, EPOLL_CTL_ADD, c, EPOLLIN) < 0) {
      perror("epoll_ctl(ADD)");
      drop(c);
    }
  }
}

/* The epoll instance, watching `lfd` (a non-blocking listener). Made before the server says it is
 * listening, so that a supervisor counting its descriptors from then on (posix-servers check's
 * `resources`) sees them all. Returns -1 (reported) on failure. */
static int ref_epoll_open(int lfd) {
  int ep = epoll_create1(0);
  if (ep < 0) {
    perror("epoll_create1");
    return -1;
  }
  /* The listener's entry carries NULL: no struct conn is ever at that address. */
  struct epoll_event lev;
  memset(&lev, 0, sizeof lev);
  lev.events = EPOLLIN;
  lev.data.ptr = NULL;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
    perror("epoll_ctl(ADD listener)");
    ref_close(ep);
    return -1;
  }
  return ep;
}

/* Serves the clients of `lfd` through `ep` (ref_epoll_open) until a stop signal; `wait_mask` is the
 * mask epoll_pwait installs while it waits (the stop signals unblocked). Then the listener and
 * every client are closed. Returns the exit status. */
static int ref_epoll_serve(int ep, int lfd, int handler, const sigset_t* wait_mask) {
  int status = 0;
  struct epoll_event events[MAX_EVENTS];
  while (!ref_stop_requested) {
    int n = epoll_pwait(ep, events, MAX_EVENTS, -1, wait_mask);
    if (n < 0) {
      if (errno == EINTR) continue; /* a stop signal: the loop condition decides */
      perror("epoll_pwait");
      status = 1;
      break;
    }
    for (int i = 0; i < n; i++) {
      struct conn* c = events[i].data.ptr;
      if (c == NULL) {
        on_listener(ep, lfd);
        continue;
      }
      /* Each descriptor appears at most once per batch, so dropping c here cannot leave a
       * later event of this batch pointing at freed memory. */
      int rc;
      if (c->pending > 0 || c->reply_left > 0) {
        rc = (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? on_writable(ep, c, handler) : 0;
      } else {
        rc = (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? on_readable(ep, c, handler) : 0;
      }
      if (rc < 0) drop(c);
    }
  }

  /* Closing the listener frees the port; then every client still connected is closed. */
  ref_close(lfd);
  while (clients) drop(clients);
  ref_close(ep);
  return status;
}

#endif /* REF_EPOLL_LOOP_H */
