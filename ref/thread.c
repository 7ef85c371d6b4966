/*
 * ref-thread: the threaded server of UNP chapter 26 — one detached pthread per connection.
 *
 *   ref-thread [--host 127.0.0.1] [--port 0] [--handler echo|upper|rpc]
 *
 * Each worker receives its own heap-allocated argument (UNP figure 26.4's fix): passing &cfd,
 * the main thread's variable, would let the next accept() overwrite it before the new thread
 * had read it, and two threads would serve one descriptor while another was never served.
 *
 * Workers are created with every signal blocked, so SIGTERM/SIGINT always reach the main
 * thread, blocked in accept(). On a stop signal the listener is closed and main returns; exit()
 * ends the workers and the kernel closes their connections.
 */
#include "ref.h"

#include <pthread.h>

struct worker_arg {
  int cfd;
  int handler;
};

static void* worker(void* p) {
  /* Copied and freed first: from here on the thread owns nothing on the heap. */
  struct worker_arg arg = *(struct worker_arg*)p;
  free(p);
  ref_serve(arg.cfd, arg.handler);
  ref_close(arg.cfd);
  return NULL;
}

int main(int argc, char** argv) {
  struct ref_config cfg;
  ref_parse_args_for(argc, argv, &cfg, REF_ARG_RPC);

  int port = 0;
  int lfd = ref_listen(&cfg, &port);
  ref_listen_fd = lfd;
  ref_install_stop_handlers();
  ref_announce(port);

  sigset_t all, old;
  sigfillset(&all);

  int status = 0;
  while (!ref_stop_requested) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int cfd = accept(lfd, (struct sockaddr*)&peer, &plen);
    if (cfd < 0) {
      if (errno == EINTR || ref_stop_requested) continue;
      if (ref_accept_error_is_transient(errno) || ref_accept_backoff(errno)) continue;
      perror("accept");
      status = 1;
      break;
    }

    struct worker_arg* arg = malloc(sizeof *arg);
    if (arg == NULL) {
      fprintf(stderr, "malloc: out of memory; dropping a client\n");
      ref_close(cfd);
      continue;
    }
    arg->cfd = cfd;
    arg->handler = cfg.handler;

    /* A new thread inherits its creator's signal mask: block everything around the creation. */
    int rc = pthread_sigmask(SIG_BLOCK, &all, &old);
    if (rc != 0) {
      fprintf(stderr, "pthread_sigmask: %s\n", strerror(rc));
      exit(1);
    }
    pthread_t tid;
    rc = pthread_create(&tid, NULL, worker, arg);
    int rc2 = pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc2 != 0) {
      fprintf(stderr, "pthread_sigmask: %s\n", strerror(rc2));
      exit(1);
    }
    if (rc != 0) {
      /* pthread functions return the error instead of setting errno. EAGAIN: out of threads,
       * this client is dropped, the server goes on. */
      fprintf(stderr, "pthread_create: %s\n", strerror(rc));
      free(arg);
      ref_close(cfd);
      continue;
    }
    /* Nobody joins a worker: detached, its resources go back to the system when it returns. */
    rc = pthread_detach(tid);
    if (rc != 0) fprintf(stderr, "pthread_detach: %s\n", strerror(rc));
  }

  ref_listen_fd = -1;
  ref_close(lfd);
  return status;
}
