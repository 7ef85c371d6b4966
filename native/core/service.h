// What a connection is served with: the handler. Besides the lecture's echo (and its upper-case
// variant), the classic internal services of inetd (RFC 863 discard, 864 chargen, 867 daytime,
// 868 time), rpc (UNP ch. 30's web_child: request lines naming a size, each answered with that
// many bytes, until the client closes), and exec: any program on the port, as inetd, tcpserver
// and `socat EXEC:` run one (exec_child.h; only the process models can, a thread cannot become
// another program).
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
  Rpc,      // read a line naming a size, send that many bytes, again until the client closes (UNP ch. 30)
  Exec,     // the connection is a program's stdin and stdout (exec_child.h); never served here
};

// How a handler behaves, as data an event loop can act on.
struct ServiceShape {
  bool reads;    // the client is read (else: nothing is read before the close)
  bool replies;  // what is read is sent back, through apply_handler()
  bool greets;   // a message is sent at connect (service_greeting()), and then the server closes
  bool streams;  // output is generated whenever the socket can take it (chargen_fill())
  bool sized;    // request lines naming a reply size (RpcRequest), each answered in turn, until the client's EOF
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

// rpc: UNP ch. 30's web_child() (3rd ed., §30.5; its client, §30.3), the exchange every server
// design of the chapter is measured with. Per connection: read a line, a decimal size ending in
// '\n' (a '\r' before it is tolerated, as UNP's atol() stops at it); send that many bytes; read the
// next line; until the client closes (it closes first, so the TIME_WAIT is the client's); then the
// server closes. Requests may be pipelined (several lines in one write) and arrive in pieces; a
// last line that the client's EOF ends instead of '\n' is served too, as UNP's readline() returns
// it. The reply is the first that-many bytes of chargen's stream (chargen_fill from position 0; UNP
// sends an uninitialised buffer), so a client can check every byte.
//
// Bounds: a size from 1 to the server's rpcMaxBytes (UNP's MAXN, 16384, by default; up to
// kRpcMaxBytesLimit), a line of at most kRpcLineMax bytes. Anything else — 0, a size over the
// bound, a non-digit, an empty or over-long line — is refused as UNP's web_child() refuses it
// (err_quit: the child exits): the server closes the connection at once, without a reply to that
// line (replies to the lines before it were sent whole), reason error. A client that asked for N
// bytes and reads EOF before the N-th knows it was refused; a reply of some other text would be
// taken for N bytes of data.
constexpr uint32_t kRpcDefaultMaxBytes = 16384;   // UNP's MAXN
constexpr uint32_t kRpcMaxBytesLimit = 1u << 30;  // the largest bound a server may be given
constexpr size_t kRpcLineMax = 64;                // digits (leading zeros allowed), '\r', '\n'
constexpr size_t kRpcInputMax = 512;              // bytes read at once: several pipelined lines

// One request line as it arrives, in pieces of any size.
struct RpcRequest {
  enum class Status { More, Ready, Refused };
  size_t length = 0;   // bytes of the line received so far
  uint32_t reply = 0;  // the size named (so far)
  bool cr = false;     // the last byte was '\r': only '\n' may follow
  // Takes bytes of data[0..n) up to and including the line's '\n'; `used` says how many it took.
  // Ready: the line is whole and `reply` is the size (1..max_bytes).
  Status feed(const char* data, size_t n, uint32_t max_bytes, size_t& used);
  // The client's EOF came with this line begun (length > 0) and no '\n': the line as it is.
  Status end_of_input() const;
};

}  // namespace ps
