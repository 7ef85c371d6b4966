// Steps 1–3 of the lecture: socket() → lfd, bind(lfd, ip, port), listen(lfd, backlog).
// Done in Node's own process for every model, so a failure (EADDRINUSE, EACCES…) is reported
// synchronously, with the failing syscall's name, before any process or thread exists.
#pragma once

#include <sys/socket.h>
#include <string>

#include "event_pipe.h"
#include "sys_error.h"
#include "unique_fd.h"

namespace ps {

struct ListenOptions {
  std::string host;   // numeric IPv4 or IPv6 address, IPv6 maybe with a %zone (validated in TypeScript)
  int port = 0;       // 0: the kernel picks a free port
  int backlog = 511;  // Node's net.Server default (lib/server/options.ts documents it)
  // reuseport model: SO_REUSEPORT before bind(), so that the workers' own listeners may join the
  // address (socket(7): every socket of the group sets it before bind).
  bool reuseport = false;
};

// A numeric IPv4 or IPv6 address and a port as a sockaddr (no name resolution). An IPv6 address
// may carry a zone, `fe80::1%eth0`: sin6_scope_id is that interface's index, as Node (libuv)
// reads it. Returns its length, or 0 when `host` is neither.
socklen_t make_sockaddr(const std::string& host, int port, sockaddr_storage& out);

// On success `lfd` is a listening socket (SOCK_CLOEXEC) and `bound` its getsockname() address.
// Each of the three calls is traced through `events` (when tracing is on).
SysError open_listen_socket(const ListenOptions& options, UniqueFd& lfd, sockaddr_storage& bound,
                            const EventPipe& events);

}  // namespace ps
