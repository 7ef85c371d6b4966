// What a connection is served with: the handler. Besides the lecture's echo (and its upper-case
// variant), the classic internal services of inetd (RFC 863 discard, 864 chargen, 867 daytime,
// 868 time), rpc (UNP ch. 30's Web-style exchange: a request naming a size, that many bytes back,
// close), and exec: any program on the port, as inetd, tcpserver and `socat EXEC:` run one
// (exec_child.h; only the process models can, a thread cannot become another program).
//
// A handler is described here once, in a form any loop can drive: what to send when the client
// connects and whether to close then (daytime, time), what to do with bytes read (echo, upper:
// send them back transformed; discard, chargen: throw them away), and whether to keep the socket's
// send buffer full (chargen). The blocking loop of every model (serve_connection, connection.h)
// and an event loop on non-blocking sockets both call these functions, so a service is written
// once. Everything here is async-signal-safe (no allocation, no locks, no locale or time-zone
// lookup): it runs in forked children and worker threads alike.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ps {

enum class Handler {
  Echo,     // write back exactly what was read (RFC 862)
  Upper,    // write back what was read with ASCII a–z turned into A–Z
  Discard,  // read and throw away (RFC 863)
  Chargen,  // send RFC 864's rotating lines for as long as the client takes them; input thrown away
  Daytime,  // send one human-readable line with the date and time, then close (RFC 867)
  Time,     // send the time as 32-bit seconds since 1900-01-01 00:00 UTC, big-endian, then close (RFC 868)
  Rpc,      // read one request line naming a size, send that many bytes, then close (UNP ch. 30)
  Exec,     // the connection is a program's stdin and stdout (exec_child.h); never served here
};

// How a handler behaves, as data an event loop can act on.
struct ServiceShape {
  bool reads;    // the client is read (else: nothing is read before the close)
  bool replies;  // what is read is sent back, through apply_handler()
  bool greets;   // a message is sent at connect (service_greeting()), and then the server closes
  bool streams;  // output is generated whenever the socket can take it (chargen_fill())
  bool sized;    // one request naming a reply size (RpcRequest), the reply, then the server closes
};

ServiceShape service_shape(Handler handler);

// The reply to n bytes just read, in place (the reply is as long as the request): echo leaves
// them, upper turns ASCII a–z into A–Z. Other handlers do not reply.
void apply_handler(Handler handler, char* data, size_t n);

// daytime and time: the message, for the current wall-clock time (CLOCK_REALTIME). Returns its
// length (at most kGreetingMax), 0 for the other handlers.
constexpr size_t kGreetingMax = 64;
size_t service_greeting(Handler handler, char* out, size_t cap);

// The greetings at a given time (seconds since the Unix epoch), for tests and for the above.
// daytime (RFC 867 suggests this syntax): "Wednesday, November 25, 2026 14:03:07-UTC\r\n".
size_t daytime_text(int64_t unix_seconds, char* out, size_t cap);
// time (RFC 868): seconds since 1900-01-01 00:00 UTC, modulo 2^32 (it wraps in 2036), big-endian.
constexpr int64_t kSecondsFrom1900To1970 = 2208988800LL;
size_t time_bytes(int64_t unix_seconds, char* out, size_t cap);

// chargen (RFC 864): the 95 printable ASCII characters (' ' to '~') as a ring; line N holds the
// 72 characters starting at character N mod 95, then CR LF. The stream repeats every 95 lines.
constexpr uint32_t kChargenLineChars = 72;
constexpr uint32_t kChargenLineBytes = kChargenLineChars + 2;
constexpr uint32_t kChargenCycleBytes = 95 * kChargenLineBytes;

// Where a connection is in the stream. Advance it by what the socket took, not by what was filled.
struct ChargenCursor {
  uint32_t pos = 0;  // 0 .. kChargenCycleBytes-1
  void advance(size_t sent) { pos = static_cast<uint32_t>((pos + sent) % kChargenCycleBytes); }
};

// Fills out[0..n) with the stream from the cursor on (the cursor itself does not move).
void chargen_fill(const ChargenCursor& cursor, char* out, size_t n);

// rpc: the workload of UNP ch. 30's clients (a Web-style exchange). The request is 1 to
// kRpcDigitsMax ASCII decimal digits and a '\n' (leading zeros allowed; no sign, space or '\r'),
// naming a reply size from 0 to kRpcMaxReply bytes. The reply is the first that-many bytes of
// chargen's stream (chargen_fill from position 0), so a client can check every byte; then the
// server closes. A request that breaks these rules, or bytes after the '\n' read with it, is
// malformed: the server closes at once (reason error), without a reply. The client must send
// nothing more: it reads the reply until EOF and closes.
constexpr size_t kRpcDigitsMax = 7;
constexpr size_t kRpcRequestMax = kRpcDigitsMax + 1;  // with the '\n'
constexpr uint32_t kRpcMaxReply = 1024 * 1024;

// The request as it arrives, in pieces of any size.
struct RpcRequest {
  enum class Status { More, Ready, Malformed };
  size_t length = 0;   // bytes of the request received so far
  uint32_t reply = 0;  // the size named (so far)
  // How many bytes may still be read without reading past the longest valid request.
  size_t room() const { return kRpcRequestMax - length; }
  // Takes n more bytes (n <= room()). Ready: the '\n' was the last of them and `reply` is the size.
  Status feed(const char* data, size_t n);
};

}  // namespace ps
