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
 * --handler rpc: the request is read a piece at a time (never past its longest valid form); then
 * the reply is sent a buffer at a time from chargen's stream, switching to EPOLLOUT when the socket
 * is full; once all of it is out the connection is closed.
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
  size_t pending;   /* bytes of buf still to send */
  size_t offset;    /* where they start */
  size_t req_len;   /* rpc: request bytes read so far */
  long req_size;    /* rpc: the size they name so far */
  long reply_left;  /* rpc: reply bytes not yet put in buf; -1 until the request is whole */
  size_t reply_pos; /* rpc: where the reply is in chargen's cycle */
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

/* rpc: sends the reply, refilling buf from chargen's stream. Returns 1 when all of it is out (the
 * connection is then closed), 0 when the socket is full, -1 on error. */
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

/* rpc, readable: one read of the request; once it is whole, the reply. Returns -1 to drop (also
 * when the reply is all out: the server closes), 0 to wait. */
static int on_request(int ep, struct conn* c) {
  ssize_t n = recv(c->fd, c->buf, REF_RPC_REQUEST_MAX - c->req_len, 0);
  if (n == 0) return -1; /* EOF before a whole request: nothing to answer */
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno != ECONNRESET) perror("recv");
    return -1;
  }
  long want = ref_rpc_feed(c->buf, (size_t)n, &c->req_len, &c->req_size);
  if (want == -2) return -1; /* malformed: closed without a reply */
  if (want == -1) return 0;
  c->reply_left = want;
  int rc = flush_reply(c);
  if (rc != 0) return -1;
  if (watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT) < 0) {
    perror("epoll_ctl(MOD)");
    return -1;
  }
  return 0;
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
  if (rc == 0 && watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT) < 0) {
    perror("epoll_ctl(MOD)");
    return -1;
  }
  return 0;
}

/* The client can take more of its pending echo (rpc: of its reply; once all is out, it is dropped). */
static int on_writable(int ep, struct conn* c) {
  if (c->reply_left >= 0) return flush_reply(c) == 0 ? 0 : -1;
  int rc = flush_pending(c);
  if (rc < 0) return -1;
  if (rc == 1 && watch(ep, EPOLL_CTL_MOD, c, EPOLLIN) < 0) {
    perror("epoll_ctl(MOD)");
    return -1;
  }
  return 0;
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
    c->req_len = 0;
    c->req_size = 0;
    c->reply_left = -1;
    c->reply_pos = 0;
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

/* Serves the clients of `lfd` (a non-blocking listener) until a stop signal; `wait_mask` is the
 * mask epoll_pwait installs while it waits (the stop signals unblocked). Then the listener and
 * every client are closed. Returns the exit status. */
static int ref_epoll_serve(int lfd, int handler, const sigset_t* wait_mask) {
  int ep = epoll_create1(0);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  /* The listener's entry carries NULL: no struct conn is ever at that address. */
  struct epoll_event lev;
  memset(&lev, 0, sizeof lev);
  lev.events = EPOLLIN;
  lev.data.ptr = NULL;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
    perror("epoll_ctl(ADD listener)");
    return 1;
  }
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
      if (c->pending > 0 || c->reply_left >= 0) {
        rc = (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? on_writable(ep, c) : 0;
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
