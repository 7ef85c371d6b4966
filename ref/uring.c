/*
 * ref-uring: one thread, many clients, through io_uring — the design after epoll, written with
 * liburing as most io_uring servers are.
 *
 *   ref-uring [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc] [--rpc-max-bytes 16384]
 *
 * Requests go into the submission queue, results come back in the completion queue, and one
 * io_uring_enter both submits what a turn queued and waits for what completed
 * (io_uring_submit_and_wait_timeout, with the stop signals unblocked only while it waits, as
 * ref-epoll's epoll_pwait). One multishot accept takes every client; each client has one
 * multishot receive into the provided buffers (a ring of buffers the kernel picks from) and at
 * most one send in flight.
 *
 * Echo: a received buffer is sent as it is (upper: changed in place), and goes back to the ring
 * once its send has completed; a short send sends the rest. Buffers received while a send is in
 * flight wait in the client's queue, in order; once REF_URING_HOLD of them wait, the client's
 * receive is cancelled (backpressure: the rest stays in the kernel's socket buffer) and armed
 * again once the queue is empty.
 *
 * --handler rpc (ref.h, UNP's web_child(), as ref-epoll's answer_requests): the received buffers
 * wait in the same queue, parsed a line at a time; each whole line's reply is sent a buffer at a
 * time from chargen's stream, and the next line is taken only once it is out. The client's EOF,
 * once every line received before it is answered, closes the client; a refused line closes it at
 * once.
 *
 * A client is freed only when the kernel holds none of its requests (a request keeps the socket,
 * and its buffer, in use even after close()): its requests are cancelled first.
 *
 * Needs Linux 6.1 (SINGLE_ISSUER and DEFER_TASKRUN: completions are produced only when the
 * thread asks for them; multishot receive came in 6.0). Built where liburing is (Debian:
 * liburing-dev), linked statically.
 */
#include "ref.h"

#include <liburing.h>
#include <stdint.h>
#include <sys/mman.h>

#define REF_URING_ENTRIES 1024 /* submission queue; the completion queue is twice that */
#define REF_URING_BUFFERS 1024 /* provided buffers of REF_BUFSIZE bytes */
#define REF_URING_HOLD 4       /* buffers a client may have waiting before its receive stops */
#define REF_URING_GROUP 0

/* What a request is: its user_data is the client's address with the operation in the low bits. */
enum op { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_CANCEL = 4 };

struct conn {
  int fd;
  int inflight;   /* requests whose last completion has not come */
  int receiving;  /* the multishot receive is armed */
  int cancelling; /* and its cancel is on the way (backpressure) */
  int closing;
  int eof;     /* the client's EOF came while received bytes were still queued */
  int sending; /* a send is in flight */
  /* The received buffers (id and length), oldest first. Echo: to send, the head's unsent bytes
   * from `offset`; rpc: to parse, the head's unparsed bytes from `in_at`. */
  unsigned short queue_bid[REF_URING_BUFFERS], queue_bytes[REF_URING_BUFFERS];
  int queue_head, queue_len;
  size_t offset;
  /* rpc, as ref-epoll's: the request line so far, then its reply */
  size_t in_at;
  struct ref_line line;
  long reply_left; /* reply bytes not yet put in buf */
  size_t reply_pos;
  size_t pending; /* bytes of buf being sent (from `offset`) */
  char buf[REF_BUFSIZE];
};

static struct io_uring ring;
static struct io_uring_buf_ring* buffers;
static char* buffer_data;
static int handler;

static char* buffer(int bid) { return buffer_data + (size_t)bid * REF_BUFSIZE; }

static void recycle(int bid) {
  io_uring_buf_ring_add(buffers, buffer(bid), REF_BUFSIZE, (unsigned short)bid,
                        io_uring_buf_ring_mask(REF_URING_BUFFERS), 0);
  io_uring_buf_ring_advance(buffers, 1);
}

/* An SQE, submitting what is queued first when the submission queue is full. */
static struct io_uring_sqe* get_sqe(void) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  if (sqe == NULL) {
    fprintf(stderr, "io_uring: no submission queue entry\n");
    exit(1);
  }
  return sqe;
}

static void* tag(struct conn* c, enum op op) { return (void*)((uintptr_t)c | (uintptr_t)op); }

static void arm_accept(int lfd) {
  struct io_uring_sqe* sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, tag(NULL, OP_ACCEPT));
}

static void arm_receive(struct conn* c) {
  struct io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = REF_URING_GROUP;
  io_uring_sqe_set_data(sqe, tag(c, OP_RECV));
  c->receiving = 1;
  c->inflight++;
}

static void send_bytes(struct conn* c, const char* data, size_t n) {
  struct io_uring_sqe* sqe = get_sqe();
  io_uring_prep_send(sqe, c->fd, data, n, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, tag(c, OP_SEND));
  c->sending = 1;
  c->inflight++;
}

static void cancel(struct conn* c, unsigned flags) {
  struct io_uring_sqe* sqe = get_sqe();
  if (flags & IORING_ASYNC_CANCEL_FD)
    io_uring_prep_cancel_fd(sqe, c->fd, flags);
  else
    io_uring_prep_cancel(sqe, tag(c, OP_RECV), 0);
  io_uring_sqe_set_data(sqe, tag(c, OP_CANCEL));
  c->inflight++;
}

/* Ends a client: cancels what it has in flight; it is freed when the last completion is in. */
static void drop(struct conn* c) {
  if (c->closing) return;
  c->closing = 1;
  for (; c->queue_len > 0; c->queue_len--) {
    recycle(c->queue_bid[c->queue_head]);
    c->queue_head = (c->queue_head + 1) % REF_URING_BUFFERS;
  }
  if (c->inflight > 0) cancel(c, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL);
}

static void release_if_done(struct conn* c) {
  if (!c->closing || c->inflight > 0) return;
  ref_close(c->fd);
  free(c);
}

/* Echo: sends the oldest received buffer (what is left of it). */
static void send_queued(struct conn* c) {
  if (c->sending || c->queue_len == 0) return;
  send_bytes(c, buffer(c->queue_bid[c->queue_head]) + c->offset, c->queue_bytes[c->queue_head] - c->offset);
}

/* The head of the queue is done with: its buffer goes back to the ring; once the queue is empty,
 * the receive is armed again if backpressure (or a lack of buffers) had stopped it. */
static void pop_queued(struct conn* c) {
  recycle(c->queue_bid[c->queue_head]);
  c->queue_head = (c->queue_head + 1) % REF_URING_BUFFERS;
  c->queue_len--;
  c->offset = 0;
  c->in_at = 0;
  if (c->queue_len == 0 && !c->receiving && !c->eof && !c->closing) arm_receive(c);
}

/* rpc: the next buffer of the reply from chargen's stream, sent. */
static void send_reply(struct conn* c) {
  size_t chunk = (size_t)c->reply_left < sizeof c->buf ? (size_t)c->reply_left : sizeof c->buf;
  ref_chargen_fill(c->buf, c->reply_pos, chunk);
  c->reply_pos = (c->reply_pos + chunk) % REF_CHARGEN_CYCLE;
  c->reply_left -= (long)chunk;
  c->offset = 0;
  c->pending = chunk;
  send_bytes(c, c->buf, chunk);
}

/* rpc, with no send in flight: the rest of the reply, then every line received, each answered in
 * turn. Waits for on_send (a reply buffer is out) or on_receive (more of the request). */
static void answer_requests(struct conn* c) {
  while (!c->closing) {
    if (c->reply_left > 0) {
      send_reply(c);
      return;
    }
    long want;
    if (c->queue_len > 0) {
      size_t used;
      want = ref_rpc_feed(&c->line, buffer(c->queue_bid[c->queue_head]) + c->in_at,
                          c->queue_bytes[c->queue_head] - c->in_at, ref_rpc_max, &used);
      c->in_at += used;
      if (c->in_at == c->queue_bytes[c->queue_head]) pop_queued(c);
    } else if (c->eof) {
      if (c->line.len == 0) { /* between lines: the client is done */
        drop(c);
        return;
      }
      want = c->line.size > 0 ? c->line.size : -2; /* within one: readline() returns it */
    } else {
      return;
    }
    if (want == -2) { /* refused: closed without a reply to that line */
      drop(c);
      return;
    }
    if (want > 0) {
      c->reply_left = want;
      c->reply_pos = 0;
      memset(&c->line, 0, sizeof c->line);
    }
  }
}

static void on_receive(struct conn* c, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) c->receiving = c->cancelling = 0;
  if (res <= 0) {
    if (res == -ENOBUFS || res == -ECANCELED) {
      /* Out of buffers, or stopped for backpressure: again once this client's queue is empty. */
      if (c->queue_len == 0 && !c->closing && !c->eof) arm_receive(c);
      return;
    }
    if (res < 0 && res != -ECONNRESET) fprintf(stderr, "recv: %s\n", strerror(-res));
    if (res == 0 && handler == REF_RPC) {
      c->eof = 1; /* every line received before it is answered first */
      if (!c->sending) answer_requests(c);
    } else if (res == 0 && c->queue_len > 0) {
      c->eof = 1; /* half-close: everything received is echoed first */
    } else {
      drop(c); /* EOF, or an error */
    }
    return;
  }
  int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
  if (c->closing) {
    recycle(bid);
    return;
  }
  if (handler != REF_RPC) ref_transform(buffer(bid), (size_t)res, handler == REF_UPPER);
  if (c->queue_len == 0) c->offset = c->in_at = 0;
  int tail = (c->queue_head + c->queue_len) % REF_URING_BUFFERS;
  c->queue_bid[tail] = (unsigned short)bid;
  c->queue_bytes[tail] = (unsigned short)res;
  c->queue_len++;
  if (handler == REF_RPC) {
    if (!c->sending) answer_requests(c);
  } else {
    send_queued(c);
  }
  if (!c->closing && c->queue_len >= REF_URING_HOLD && c->receiving && !c->cancelling) {
    cancel(c, 0);
    c->cancelling = 1;
  }
}

static void on_send(struct conn* c, int res) {
  c->sending = 0;
  if (c->closing) return;
  if (res < 0) {
    if (res != -EPIPE && res != -ECONNRESET) fprintf(stderr, "send: %s\n", strerror(-res));
    drop(c);
    return;
  }
  c->offset += (size_t)res;
  if (handler == REF_RPC) {
    if (c->offset < c->pending)
      send_bytes(c, c->buf + c->offset, c->pending - c->offset); /* short: the rest */
    else
      answer_requests(c);
    return;
  }
  if (c->offset < c->queue_bytes[c->queue_head]) { /* short: the rest */
    send_queued(c);
    return;
  }
  pop_queued(c); /* the queue empty again: receive again */
  if (c->queue_len > 0)
    send_queued(c);
  else if (c->eof)
    drop(c);
}

static void on_accept(int lfd, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE) && !ref_stop_requested) {
    if (res < 0 && !ref_accept_error_is_transient(-res) && !ref_accept_backoff(-res)) {
      fprintf(stderr, "accept: %s\n", strerror(-res));
    }
    arm_accept(lfd);
  }
  if (res < 0) return;
  struct conn* c = calloc(1, sizeof *c);
  if (c == NULL) {
    fprintf(stderr, "calloc: out of memory; dropping a client\n");
    ref_close(res);
    return;
  }
  c->fd = res;
  arm_receive(c);
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_RPC);
  handler = cfg.handler;

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  sigset_t stop_signals, wait_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask) < 0) {
    perror("sigprocmask");
    return 1;
  }

  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  int rc = io_uring_queue_init_params(REF_URING_ENTRIES, &ring, &params);
  if (rc < 0) {
    fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-rc));
    return 1;
  }
  buffers = mmap(NULL, REF_URING_BUFFERS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  buffer_data = malloc((size_t)REF_URING_BUFFERS * REF_BUFSIZE);
  if (buffers == MAP_FAILED || buffer_data == NULL) {
    perror("buffers");
    return 1;
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)buffers;
  reg.ring_entries = REF_URING_BUFFERS;
  reg.bgid = REF_URING_GROUP;
  rc = io_uring_register_buf_ring(&ring, &reg, 0);
  if (rc < 0) {
    fprintf(stderr, "io_uring_register_buf_ring: %s\n", strerror(-rc));
    return 1;
  }
  io_uring_buf_ring_init(buffers);
  for (int bid = 0; bid < REF_URING_BUFFERS; bid++) recycle(bid);

  ref_announce(port);
  arm_accept(lfd);
  int status = 0;
  while (!ref_stop_requested) {
    struct io_uring_cqe* cqe;
    rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, NULL, &wait_mask);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-rc));
      status = 1;
      break;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      uintptr_t data = (uintptr_t)io_uring_cqe_get_data(cqe);
      struct conn* c = (struct conn*)(data & ~(uintptr_t)7);
      enum op op = (enum op)(data & 7);
      seen++;
      if (op == OP_ACCEPT) {
        on_accept(lfd, cqe->res, cqe->flags);
        continue;
      }
      if (op == OP_RECV && (cqe->flags & IORING_CQE_F_MORE) == 0) c->inflight--;
      if (op != OP_RECV) c->inflight--;
      if (op == OP_RECV) on_receive(c, cqe->res, cqe->flags);
      if (op == OP_SEND) on_send(c, cqe->res);
      release_if_done(c);
    }
    io_uring_cq_advance(&ring, seen);
  }
  /* Closing the listener frees the port; exit() closes the clients and the ring, whose requests
   * the kernel cancels. */
  ref_close(lfd);
  io_uring_queue_exit(&ring);
  return status;
}
