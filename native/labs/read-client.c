/*
 * lab-read-client: the client of the lingering-close lab, a plain read() loop as UNP's clients
 * have, so that what read() returns is seen as it is (Node's net.Socket, over libuv, may report a
 * reset that comes after data as a clean end of the stream).
 *
 *   lab-read-client --port N [--host 127.0.0.1] [--body BYTES] [--read-when-told no|yes]
 *
 * connect(), one write() of "upload\n" followed by BYTES bytes of body (default 16384), then
 * read() until it returns 0 or fails. With --read-when-told yes it first waits for a line on its
 * standard input: the lab tells it when the server is through with the reply, so that the client
 * reads at the same moment whichever way the server closes. Prints on stdout "sent" once its
 * request is out, then "received <bytes>" and "eof", or "error <errno>" for the read() that failed. Exit 0 either way;
 * 1 if it could not connect or send.
 */
#include "lab.h"

int main(int argc, char** argv) {
  long body = lab_take_long(&argc, argv, "--body", 0, 1L << 20, 16384);
  static const char* const yes_no[] = {"no", "yes", NULL};
  int when_told = lab_take_choice(&argc, argv, "--read-when-told", yes_no, 0);
  struct ref_config cfg;
  ref_parse_args(argc, argv, &cfg);

  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)cfg.port);
  if (cfg.port == 0 || inet_pton(AF_INET, cfg.host, &addr.sin_addr) != 1) {
    fprintf(stderr, "%s: needs --port N and a numeric IPv4 --host\n", argv[0]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) < 0) {
    perror("connect");
    return 1;
  }
  size_t n = 7 + (size_t)body;
  char* request = malloc(n);
  if (request == NULL) {
    perror("malloc");
    return 1;
  }
  memcpy(request, "upload\n", 7);
  memset(request + 7, 'b', (size_t)body);
  if (ref_send_all(fd, request, n) < 0) return 1;
  free(request);
  lab_say("sent");
  if (when_told) {
    char go[64];
    if (fgets(go, sizeof go, stdin) == NULL) return 1;
  }

  char buf[REF_BUFSIZE];
  long received = 0;
  ssize_t got;
  while ((got = read(fd, buf, sizeof buf)) != 0) {
    if (got > 0)
      received += (long)got;
    else if (errno != EINTR)
      break;
  }
  int err = errno;
  lab_say("received %ld", received);
  if (got == 0)
    lab_say("eof");
  else
    lab_say("error %d", err);
  ref_close(fd);
  return 0;
}
